/**
 * kubepki as a library: the use cases the CLI runs, as typed functions. Each takes plain options
 * (the CLI's flags, camelCased), returns data, and throws a KubepkiError (exitCode 2 for bad input,
 * 3 for I/O or the environment) with the underlying error as its `cause`.
 */
export {
  type AuditOutcome,
  type AuditRequest,
  audit,
  type ReportFormat,
  renderReport,
  writeReport,
} from "./app/audit.js";
export {
  checkExpiration,
  type ExpirationOutcome,
  type RenewOutcome,
  type RenewRequest,
  renewCertificates,
} from "./app/certs.js";
export { type CrlRequest, writeCrl } from "./app/crl.js";
export {
  type HuntFormat,
  type HuntOutcome,
  type HuntRequest,
  hunt,
  renderHuntReport,
} from "./app/hunt.js";
export {
  type ClusterSettings,
  type InitOutcome,
  type InitReport,
  type InitRequest,
  initCluster,
} from "./app/init.js";
export { type IssueClientRequest, issueClient } from "./app/issue.js";
export {
  createJoinBundle,
  type JoinBundleOutcome,
  type JoinBundleRequest,
  type JoinOutcome,
  type JoinRequest,
  joinControlPlane,
  type SharedSummary,
} from "./app/join.js";
export {
  type ImportOutcome,
  type LedgerListRequest,
  type ListedEntry,
  ledgerImport,
  ledgerInit,
  ledgerList,
  ledgerMigrate,
  ledgerRepair,
  ledgerVerify,
  type MigrateRequest,
  type VerifyOutcome,
} from "./app/ledger.js";
export { addNode, type NodeAddOutcome, type NodeAddRequest } from "./app/node.js";
export { type RevokeOutcome, type RevokeRequest, revoke } from "./app/revoke.js";
export {
  type AbortOutcome,
  abortRotation,
  type DroppedCredential,
  type RotateCaOutcome,
  type RotateCaRequest,
  type RotationStatus,
  rotateCa,
  rotationStatus,
} from "./app/rotate.js";
export {
  type RunningServe,
  type ServeRequest,
  type ServeSetup,
  type ServeSetupRequest,
  setupServe,
  startServe,
} from "./app/serve.js";
export {
  DEFAULT_HEALTH_LISTEN,
  type ServeDeployment,
  type ServeDeployRequest,
  serveDeployment,
} from "./app/serve-deploy.js";
export type { Duration, Notice, TreeOptions } from "./app/tree.js";
export {
  acceptChanges,
  printAuditRules,
  printDaemonSet,
  printSystemdUnit,
  type RunningWatch,
  startWatch,
  type WatchRequest,
  watchOnce,
} from "./app/watch.js";
export type { Finding, Severity } from "./audit/finding.js";
export { ExitCode, InputError, IoError, KubepkiError, UnsafePathError } from "./errors.js";
export type { BaselineRecord, LedgerEntry, Status } from "./ledger/store.js";
export type { CredentialSummary, HuntReport } from "./report/hunt-model.js";
export type { AuditReport } from "./report/model.js";
export type { ReadinessCheck } from "./revoke/webhook.js";
export { VERSION } from "./version.js";

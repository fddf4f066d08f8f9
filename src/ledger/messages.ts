/** What to say when the ledger a command needs is not there, or is not a kubepki ledger. */
export function missingLedgerMessage(file: string, what: string): string {
  return `the ledger ${file} ${what}. kubepki never recreates it silently: an empty ledger would forget every revocation. If it was lost, restore it from a backup, or run \`kubepki ledger init\` then \`kubepki ledger repair\` (restores the revocations the published CRLs still list) and \`kubepki ledger import\``;
}

/**
 * Values of one attribute in a distinguished name as crypto.X509Certificate prints it
 * ("O=a\nO=b\nCN=c"): dnFields(x.subject, "O") -> ["a", "b"].
 */
export function dnFields(dn: string, name: string): string[] {
  return dn
    .split("\n")
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

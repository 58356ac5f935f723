import { isIPv4, isIPv6 } from "node:net";

/**
 * Who may reach Packer's temporary build instance over SSH. The amazon plugin opens port 22 of
 * the instance's temporary security group to `temporary_security_group_source_cidrs`, which the
 * templates take from the `ssh_source_cidrs` variable, usually set through this environment
 * variable. One rule, used by the program's preflight, the stage runner's preflight and (mirrored
 * in HCL) the templates' variable validation in packer/common/variables.pkr.hcl.
 */
export const SSH_CIDRS_VARIABLE = "ssh_source_cidrs";
export const SSH_CIDRS_ENV = `PKR_VAR_${SSH_CIDRS_VARIABLE}`;

/** The widest prefix allowed: a /24 holds 256 IPv4 addresses, a /64 is one IPv6 subnet. */
export const WIDEST_PREFIX = { ipv4: 24, ipv6: 64 } as const;

/** How a user sets it: their own public address, found without an AWS account. */
export const SSH_CIDRS_FIX = `export ${SSH_CIDRS_ENV}="[\\"$(curl -s https://checkip.amazonaws.com)/32\\"]"`;

/**
 * What is wrong with one entry, or undefined when it is a CIDR no wider than the limit. Several
 * narrow entries are fine; `["0.0.0.0/1", "128.0.0.0/1"]` is not, because each entry is too wide.
 */
export function builderCidrProblem(entry: string): string | undefined {
  const slash = entry.indexOf("/");
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const prefixText = slash < 0 ? "" : entry.slice(slash + 1);
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
  const bits = family === "ipv4" ? 32 : 128;
  if (family === undefined || !/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    return `${JSON.stringify(entry)} is not a CIDR block (address/prefix, e.g. "203.0.113.7/32")`;
  }
  const prefix = Number(prefixText);
  const widest = WIDEST_PREFIX[family];
  if (prefix < widest) {
    const addresses = family === "ipv4" ? `2^${32 - prefix} addresses` : `2^${128 - prefix} addresses`;
    return `${JSON.stringify(entry)} opens SSH to ${addresses}; an ${family === "ipv4" ? "IPv4" : "IPv6"} entry may be at most a /${widest}`;
  }
  return undefined;
}

/** Every problem of a list of entries; empty when the list opens SSH to the builder alone. */
export function builderCidrsProblems(cidrs: readonly string[]): string[] {
  if (cidrs.length === 0) return ["an empty list: the build instance would be unreachable"];
  return cidrs.map(builderCidrProblem).filter((p): p is string => p !== undefined);
}

/**
 * Parses the value as Packer reads a `list(string)` variable from the environment: an HCL list,
 * here its JSON form (a trailing comma allowed, as HCL allows it).
 */
export function parseBuilderCidrs(text: string): string[] | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/,\s*\]\s*$/, "]"));
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.every((v): v is string => typeof v === "string") ? value : undefined;
}

/** The problems of the setting's raw value (undefined: not set); empty when it is usable. */
export function builderCidrsValueProblems(value: string | undefined): string[] {
  if (value === undefined || value.trim() === "") {
    return ["not set (Packer's temporary security group needs the builder's own address for SSH)"];
  }
  const cidrs = parseBuilderCidrs(value);
  if (cidrs === undefined) return [`not a list of CIDR strings such as ["203.0.113.7/32"]: ${value}`];
  return builderCidrsProblems(cidrs);
}

/** The same, each problem a sentence naming `source`, e.g. `PKR_VAR_ssh_source_cidrs: not set (...)`. */
export function checkBuilderCidrs(value: string | undefined, source: string = SSH_CIDRS_ENV): string[] {
  return builderCidrsValueProblems(value).map((problem) => `${source}: ${problem}`);
}

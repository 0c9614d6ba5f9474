/**
 * Network addresses as given on the command line: `host:port`, with IPv6 hosts in
 * brackets (`[::1]:50051`).
 *
 * @module
 */

import { quote } from "../errors.ts";
import { UsageError } from "./usage_error.ts";

export interface Address {
  readonly host: string;
  readonly port: number;
}

const HOST_PATTERN = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** The longest host name DNS allows, in characters. */
const HOST_NAME_CHARS_MAX = 253;

/** Parses `host:port`. `flag` names where the text came from, for the error message. */
export function parseAddress(text: string, flag: string): Address {
  const hint = `expected host:port, for example 127.0.0.1:50051`;
  const trimmed = text.trim();
  let host: string;
  let portText: string;
  const refuseLong = (host: string) => {
    if (host.length <= HOST_NAME_CHARS_MAX) return;
    throw new UsageError(
      `Invalid ${flag} ${quote(text)}: the host name is ${host.length} characters, over the ${HOST_NAME_CHARS_MAX} ` +
        "DNS allows",
    );
  };
  if (trimmed.startsWith("[")) {
    const close = trimmed.indexOf("]");
    if (close < 0 || trimmed[close + 1] !== ":") {
      throw new UsageError(`Invalid ${flag} ${quote(text)}: ${hint}`);
    }
    host = trimmed.slice(1, close);
    portText = trimmed.slice(close + 2);
    refuseLong(host);
    if (!/^[0-9A-Fa-f:.]+$/.test(host)) {
      throw new UsageError(`Invalid ${flag} ${quote(text)}: ${quote(host)} is not an IPv6 address`);
    }
  } else {
    const colon = trimmed.lastIndexOf(":");
    if (colon <= 0) throw new UsageError(`Invalid ${flag} ${quote(text)}: ${hint}`);
    host = trimmed.slice(0, colon);
    portText = trimmed.slice(colon + 1);
    refuseLong(host);
    // Four dotted numbers are an IPv4 address, never a host name (a top-level domain is
    // not all digits), so 999.1.1.1 is refused here rather than sent to DNS.
    const isDottedQuad = /^[0-9]+(\.[0-9]+){3}$/.test(host);
    if (!HOST_PATTERN.test(host) || (isDottedQuad && host.split(".").some((part) => Number(part) > 255))) {
      throw new UsageError(
        `Invalid ${flag} ${quote(text)}: ${quote(host)} is not a host name or IPv4 address`,
      );
    }
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new UsageError(`Invalid ${flag} ${quote(text)}: the port must be a number from 0 to 65535`);
  }
  return { host, port: Number(portText) };
}

/** Parses a comma-separated list of addresses; empty items are refused. */
export function parseAddressList(text: string, flag: string): Address[] {
  return text.split(",").map((item) => parseAddress(item, flag));
}

/** Formats an address back to `host:port`, bracketing IPv6 hosts. */
export function formatAddress(address: Address): string {
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * The metrics endpoint's shell: an HTTP server (`--metrics-address HOST:PORT`) that
 * answers `GET /metrics` with the registry in the Prometheus text format, and
 * `GET /healthz` with 200 or 503 for load balancers and probes that speak HTTP rather
 * than gRPC health.
 *
 * Each scrape renders the registry on the spot; the work is proportional to the number
 * of series, which the registry bounds.
 *
 * @module
 */

import { type Address, formatAddress } from "../config/address.ts";
import { KvError } from "../errors.ts";
import type { Logger } from "../logging/logger.ts";
import type { MetricsRegistry } from "./registry.ts";

/** The content type of the text exposition format, version 0.0.4. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export interface MetricsServerOptions {
  readonly registry: MetricsRegistry;
  readonly logger: Logger;
  /** Whether the node serves; `/healthz` answers 200 when true, 503 otherwise. */
  readonly serving: () => boolean;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The address bound (the port resolved when 0 was asked for). */
  readonly address: Address;
  close(): Promise<void>;
}

/** Starts the endpoint; rejects with a KvError naming the address when it cannot bind. */
export function serveMetrics(address: Address, options: MetricsServerOptions): Promise<MetricsServer> {
  const target = formatAddress(address);
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: address.host,
        port: address.port,
        // The default onListen prints to the console; the node logs through its logger.
        onListen: (addr) => resolve({ address: { host: address.host, port: addr.port }, close }),
        onError: (error) => {
          options.logger.error("Metrics request failed", { error: String(error) });
          return new Response("internal error\n", { status: 500 });
        },
      }, (request) => answer(request, options));
    } catch (error) {
      const detail = error instanceof Deno.errors.AddrInUse
        ? "the address is already in use (choose another --metrics-address)"
        : error instanceof Deno.errors.PermissionDenied
        ? "permission denied (ports below 1024 need privileges)"
        : error instanceof Error
        ? error.message
        : String(error);
      reject(new KvError("UNAVAILABLE", `metrics: Cannot listen on ${target}: ${detail}`));
      return;
    }
    async function close(): Promise<void> {
      await server.shutdown();
    }
  });
}

/** What a gRPC client that was pointed here by mistake is told (Deno's server speaks
 * HTTP/2 too, so its call arrives; read as gRPC, a plain 404 page would surface as
 * "RESOURCE_EXHAUSTED: Received message larger than max"). */
const NOT_GRPC_MESSAGE =
  "metrics: This address serves Prometheus metrics over HTTP, not gRPC; call the node at its --address";

/** Routes one request. */
function answer(request: Request, options: MetricsServerOptions): Response {
  if (request.headers.get("content-type")?.startsWith("application/grpc")) {
    // A trailers-only gRPC answer: the status travels in the headers, with no body.
    return new Response(null, {
      status: 200,
      headers: { "content-type": "application/grpc", "grpc-status": "12", "grpc-message": NOT_GRPC_MESSAGE },
    });
  }
  const path = new URL(request.url).pathname;
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("only GET\n", { status: 405, headers: { allow: "GET, HEAD" } });
  }
  if (path === "/metrics") {
    return new Response(options.registry.render(), { headers: { "content-type": METRICS_CONTENT_TYPE } });
  }
  if (path === "/healthz") {
    const serving = options.serving();
    return new Response(serving ? "SERVING\n" : "NOT_SERVING\n", {
      status: serving ? 200 : 503,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  if (path === "/") {
    return new Response("kvstore: see /metrics (Prometheus) and /healthz\n", {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  return new Response("not found: see /metrics\n", { status: 404 });
}

/**
 * An HTTP proxy on 127.0.0.1 in front of a test registry that misbehaves on purpose, per
 * request path pattern: answer an error status K times, cut the connection after N body
 * bytes, flip a byte of a body, ignore Range headers, or redirect elsewhere. It counts every
 * request and the body bytes it passed on, so tests can say "the second pull fetched only
 * the manifest".
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number }
  | { kind: 'drop-after'; bytes: number }
  | { kind: 'corrupt'; atByte: number }
  | { kind: 'ignore-range' }
  /** 307 to the same path under `/__redirected` on this proxy, addressed as `viaHost` (e.g. `localhost:PORT`). */
  | { kind: 'redirect'; viaHost?: string };

export interface FaultRule {
  path: RegExp;
  method?: string;
  fault: Fault;
  /** How many matching requests get the fault (default 1); then they pass through. */
  times?: number;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  range: string | null;
  authorization: boolean;
  fault: Fault['kind'] | null;
}

export interface FaultProxy {
  host: string;
  port: number;
  requests: ProxiedRequest[];
  addFault(rule: FaultRule): void;
  clearFaults(): void;
  resetCounters(): void;
  stop(): Promise<void>;
}

const REDIRECT_PREFIX = '/__redirected';

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  const rules: Array<FaultRule & { left: number }> = [];
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();

  const take = (method: string, path: string): Fault | null => {
    const rule = rules.find((r) => r.left > 0 && r.path.test(path) && (r.method === undefined || r.method === method));
    if (!rule) return null;
    rule.left--;
    return rule.fault;
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const rawPath = req.url ?? '/';
    const path = rawPath.startsWith(REDIRECT_PREFIX) ? rawPath.slice(REDIRECT_PREFIX.length) : rawPath;
    const record: ProxiedRequest = {
      method,
      path: rawPath,
      status: 0,
      bytes: 0,
      range: typeof req.headers.range === 'string' ? req.headers.range : null,
      authorization: req.headers.authorization !== undefined,
      fault: null,
    };
    requests.push(record);
    const fault = rawPath.startsWith(REDIRECT_PREFIX) ? null : take(method, path);
    record.fault = fault?.kind ?? null;

    if (fault?.kind === 'status') {
      record.status = fault.status;
      const body = JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected HTTP ${fault.status}` }] });
      record.bytes = body.length;
      res.writeHead(fault.status, { 'content-type': 'application/json', 'content-length': body.length });
      res.end(body);
      return;
    }
    if (fault?.kind === 'redirect') {
      record.status = 307;
      res.writeHead(307, { location: `http://${fault.viaHost ?? `127.0.0.1:${port}`}${REDIRECT_PREFIX}${path}`, 'content-length': 0 });
      res.end();
      return;
    }

    const headers = { ...req.headers, host: `${target.host}:${target.port}` };
    if (fault?.kind === 'ignore-range') delete headers.range;
    const upstream = http.request({ host: target.host, port: target.port, method, path, headers }, (up) => {
      record.status = up.statusCode ?? 0;
      res.writeHead(up.statusCode ?? 502, up.statusMessage, up.headers);
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        let out = chunk;
        if (fault?.kind === 'corrupt' && fault.atByte >= sent && fault.atByte < sent + chunk.length) {
          out = Buffer.from(chunk);
          out[fault.atByte - sent] = out[fault.atByte - sent]! ^ 0xff;
        }
        if (fault?.kind === 'drop-after' && sent + out.length >= fault.bytes) {
          const part = out.subarray(0, fault.bytes - sent);
          sent += part.length;
          record.bytes = sent;
          res.write(part, () => res.socket?.destroy());
          up.destroy();
          return;
        }
        sent += out.length;
        record.bytes = sent;
        res.write(out);
      });
      up.on('end', () => res.end());
      up.on('error', () => res.socket?.destroy());
    });
    upstream.on('error', () => {
      record.status = 502;
      res.socket?.destroy();
    });
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    addFault(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clearFaults() {
      rules.length = 0;
    },
    resetCounters() {
      requests.length = 0;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

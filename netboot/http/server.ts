// The controller's HTTP service on the provisioning address: iPXE scripts, image files (kernel, initrd,
// package repository), kickstarts and the status API. Every request of interest becomes a BootEvent.
//
// | method    | path                         | token | answer                                   | event      |
// |-----------|------------------------------|-------|------------------------------------------|------------|
// | GET       | /ipxe/:node/:token           | yes   | iPXE script (install, or `exit`)         | pxe-config |
// | GET       | /boot-by-mac/:mac            | no    | the same script, for a reserved MAC      | dhcp, pxe-config |
// | GET, HEAD | /image/:version/*            | no    | image file; Range, 304, 416              | kernel, initrd, packages (*.rpm) |
// | GET       | /ks/:node/:token             | yes   | rendered kickstart                       | kickstart  |
// | POST      | /status/:node/:token         | yes   | {outcome, detail?} → onStatus → 200      | status     |
// | GET, HEAD | /healthz                     | no    | {"ok":true}                              | —          |
//
// Token answers: an unknown node and a wrong/stale token both get 403 (no node enumeration), no event, no
// state change. Status: 400 bad body (names the field), 413 body over 16 KiB, 415 not JSON, 503 while
// onStatus fails or another status for the node is in flight (curl --retry retries), 200 accepted — then
// the token is revoked (a replay gets 403) and on success the node switches to local boot.
// 5xx other than 503 only on a controller configuration error (kickstart values), never on client input.
//
// Plain GETs of image files that are answered 200/206 never reach fastify (fast-path.ts answers them from the
// server's 'request' event with the same headers, events and log lines): a hook added to fastify does not see them.
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { normaliseMac } from '../../config/mac.ts';
import { type BootContext, bootSpec, imageUrlPath, nodeUrls, renderIpxeScript } from '../boot-spec.ts';
import type { MachineRegistry, TokenPurpose } from '../machines.ts';
import type { BootEvent, BootPhase, FileSource, NetbootMachine } from '../types.ts';
import { type FastPathLogger, imageFastPath } from './fast-path.ts';
import { safeRelativePath, serveFile } from './files.ts';
import { KickstartValueError, type KickstartSettings, renderKickstart } from './kickstart.ts';
import { redactingSerializers, redactUrl } from './redact.ts';

export interface StatusReport {
  node: string;
  outcome: 'success' | 'failure';
  detail?: string;
  /** the registry's attempt number the token belonged to (the token itself never leaves this process) */
  attempt: number;
}

export interface HttpImage {
  version: string;
  source: FileSource;
  /** paths inside the image */
  kernel: string;
  initrd: string;
  repoRoot: string;
}

export interface HttpServerOptions {
  /** the provisioning address; a wildcard address (0.0.0.0, ::) is refused */
  address: string;
  /** 0 picks a free port */
  port: number;
  machines: MachineRegistry;
  image: HttpImage;
  onEvent?: (event: BootEvent) => void;
  /** durable hand-off of a final status; reject when it could not be recorded (the client retries) */
  onStatus: (report: StatusReport) => Promise<void>;
  kickstartVars:
    | KickstartSettings
    | ((machine: Readonly<NetbootMachine>) => KickstartSettings | Promise<KickstartSettings>);
  boot?: Pick<BootContext, 'consoleArgs' | 'extraArgs' | 'tftpImagePrefix'>;
  /** onStatus taking longer than this counts as failed (503, the client retries). Default 30 s. */
  statusTimeoutMs?: number;
  logger?: Logger;
}

export interface HttpServerHandle {
  url: string;
  address: string;
  port: number;
  /** what bootSpec() needs; the TFTP server renders pxelinux configs with the same context */
  bootContext: BootContext;
  close(): Promise<void>;
}

export const STATUS_BODY_LIMIT = 16 * 1024;
/** fastify's router answers 404 for a longer parameter; the image fast path leaves those to it */
const MAX_PARAM_LENGTH = 300;
const statusBody = z.object({
  outcome: z.enum(['success', 'failure']),
  detail: z.string().max(2048).optional(),
});

interface TokenParams {
  node: string;
  token: string;
}

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const { address, machines, image } = options;
  if (isIP(address) === 0) throw new Error(`http.address ${JSON.stringify(address)}: not an IP address`);
  if (address === '0.0.0.0' || address === '::')
    throw new Error(`http.address ${address}: refusing a wildcard address; give the provisioning address`);
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
    throw new Error(`http.port ${options.port}: not a TCP port`);

  // Plain GETs of image files are answered before fastify sees them (fast-path.ts): the server is made here so
  // its 'request' listener can try that first. It gets the settings fastify gives the servers it makes.
  let closing = false;
  let reqSeq = 0;
  const genReqId = () => {
    reqSeq = (reqSeq + 1) & 0x7fffffff;
    return `req-${reqSeq.toString(36)}`; // fastify's default format
  };
  const fastPath = imageFastPath({
    prefix: `/image/${image.version}/`,
    source: image.source,
    maxPathLength: MAX_PARAM_LENGTH,
    onServed: (req, path, status, url) => emitImageEvent(req.socket.remoteAddress ?? '', url, path, status),
    log: () => app.log as unknown as FastPathLogger,
    nextReqId: genReqId,
  });

  const app = Fastify({
    bodyLimit: STATUS_BODY_LIMIT,
    exposeHeadRoutes: false,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    return503OnClosing: true,
    forceCloseConnections: true,
    genReqId,
    serverFactory: (handler, opts) => {
      const server = createServer(
        fastPath
          ? (req, res) => {
              // a closing server answers 503 (fastify's return503OnClosing)
              let answered = false;
              if (!closing) {
                try {
                  answered = fastPath(req, res);
                } catch (err) {
                  // a throw in a 'request' listener would end the process: never from a client's request
                  app.log.error({ err }, 'image fast path failed');
                  if (res.headersSent) {
                    res.destroy();
                    return;
                  }
                }
              }
              if (!answered) handler(req, res);
            }
          : handler,
      );
      // what fastify sets on a server it creates itself (lib/server.js)
      const o = opts as { keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number };
      if (o.keepAliveTimeout !== undefined) server.keepAliveTimeout = o.keepAliveTimeout;
      if (o.requestTimeout !== undefined) server.requestTimeout = o.requestTimeout;
      if (o.connectionTimeout !== undefined) server.setTimeout(o.connectionTimeout);
      return server;
    },
    ...(options.logger
      ? {
          loggerInstance: options.logger.child(
            { component: 'netboot-http' },
            { serializers: redactingSerializers },
          ),
        }
      : {}),
    // errors before routing (a URL that does not decode...): a plain 400 that never echoes the URL
    frameworkErrors: (error, _req, reply) => {
      (reply as FastifyReply).code(400).send({ error: `bad request (${error.code})` });
    },
  });

  // URLs inside scripts carry the real port, known only after listen(); handlers run after that.
  let url = '';
  let bootContext: BootContext = makeBootContext('http://placeholder', image, options.boot);
  bootSpec(
    { name: 'check', hostname: 'check', token: 'x', bootMode: 'auto', target: 'install' },
    bootContext,
  ); // fail fast on bad image paths

  const emitFrom = (
    ip: string,
    log: { warn(obj: object, msg: string): void },
    phase: BootPhase,
    machine: Readonly<NetbootMachine> | undefined,
    detail: BootEvent['detail'],
  ) => {
    const event: BootEvent = { phase, at: Date.now(), ip: machine?.ip ?? ip, detail };
    if (machine) event.node = machine.name;
    if (machine?.mac) event.mac = machine.mac;
    try {
      options.onEvent?.(event);
    } catch (err) {
      log.warn({ err }, 'boot event listener failed');
    }
  };
  const emit = (
    req: FastifyRequest,
    phase: BootPhase,
    machine: Readonly<NetbootMachine> | undefined,
    detail: BootEvent['detail'],
  ) => emitFrom(clientIp(req), req.log, phase, machine, detail);
  /** the event of an image file GET answered 2xx (from the fastify route or the fast path) */
  const emitImageEvent = (
    remoteAddress: string,
    url: string,
    path: string,
    status: number,
    log: { warn(obj: object, msg: string): void } = app.log,
  ) => {
    if (status >= 300) return;
    const phase: BootPhase | undefined =
      path === image.kernel
        ? 'kernel'
        : path === image.initrd
          ? 'initrd'
          : path.endsWith('.rpm')
            ? 'packages'
            : undefined;
    if (!phase) return;
    const ip = unmapIp(remoteAddress);
    const urlPath = pathOfUrl(url);
    emitFrom(
      ip,
      log,
      phase,
      machines.byIp(ip),
      phase === 'packages' ? { path: urlPath, file: path } : { path: urlPath },
    );
  };

  /** onRequest guard (before any body is read): 403 unless node and token match. */
  const guard = (purpose: TokenPurpose) => async (req: FastifyRequest, reply: FastifyReply) => {
    const { node, token } = req.params as TokenParams;
    const machine = machines.checkToken(node, token, purpose);
    if (!machine) return reply.code(403).send({ error: 'forbidden' });
    (req as FastifyRequest & { machine?: Readonly<NetbootMachine> }).machine = machine;
  };
  const machineOf = (req: FastifyRequest) =>
    (req as FastifyRequest & { machine: Readonly<NetbootMachine> }).machine;
  const pathOfUrl = (url: string) => redactUrl(url.split('?')[0]).replace(/\/\[token\]$/, '');
  const pathOf = (req: FastifyRequest) => pathOfUrl(req.url);

  app.setNotFoundHandler((_req, reply) => {
    reply.code(404).send({ error: 'not found' });
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code: err.code, status }, 'request refused');
    const message = status >= 500 ? 'internal error' : err.message;
    reply.code(status).send({ error: redactUrl(message) });
  });

  app.route({ method: ['GET', 'HEAD'], url: '/healthz', handler: async () => ({ ok: true }) });

  app.get<{ Params: TokenParams }>(
    '/ipxe/:node/:token',
    { onRequest: guard('boot-script') },
    async (req, reply) => {
      const machine = machineOf(req);
      const spec = bootSpec(machine, bootContext);
      emit(req, 'pxe-config', machine, { path: pathOf(req), target: spec.kind });
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(renderIpxeScript(spec));
    },
  );

  // proxyDHCP: the site's DHCP server gave the address, and dnsmasq cannot send a per-host boot URL in a proxy
  // reply, so iPXE asks by its MAC (dnsmasq answers only reserved MACs; a MAC the registry does not hold gets 403,
  // like a wrong token; a node that has finished gets `exit`, as on its tokened URL). The request's source is the address the site server gave: it is this node's DHCP phase. No
  // token: it protects the callbacks against callers off the provisioning network, and anyone on it can read a
  // DHCP reply as easily as this script.
  app.get<{ Params: { mac: string } }>('/boot-by-mac/:mac', async (req, reply) => {
    const mac = normaliseMac(req.params.mac);
    const machine = mac ? machines.byMac(mac) : undefined;
    if (!machine) {
      return reply.code(403).send({ error: 'forbidden' });
    }
    const ip = clientIp(req);
    const event: BootEvent = {
      phase: 'dhcp',
      at: Date.now(),
      ip,
      node: machine.name,
      mac: machine.mac,
      detail: { via: 'proxy' },
    };
    try {
      options.onEvent?.(event);
    } catch (err) {
      req.log.warn({ err }, 'boot event listener failed');
    }
    const spec = bootSpec(machine, bootContext);
    emitFrom(ip, req.log, 'pxe-config', machine, { path: '/boot-by-mac/[mac]', target: spec.kind });
    return reply
      .type('text/plain; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(renderIpxeScript(spec));
  });

  app.get<{ Params: TokenParams }>(
    '/ks/:node/:token',
    { onRequest: guard('callback') },
    async (req, reply) => {
      const machine = machineOf(req);
      const settings =
        typeof options.kickstartVars === 'function'
          ? await options.kickstartVars(machine)
          : options.kickstartVars;
      let text: string;
      try {
        text = await renderKickstart(settings, {
          node: machine.name,
          hostname: machine.hostname,
          mac: machine.mac,
          repoUrl: `${url}/${imageUrlPath(image.version, image.repoRoot)}`,
          statusUrl: nodeUrls(url, machine).status,
          imageVersion: image.version,
          attempt: machines.attempt(machine.name) ?? 0,
        });
      } catch (err) {
        if (err instanceof KickstartValueError) {
          req.log.error({ node: machine.name, field: err.field }, redactUrl(err.message));
          return reply.code(500).send({ error: `kickstart configuration error: ${err.field}` });
        }
        throw err;
      }
      emit(req, 'kickstart', machine, { path: pathOf(req) });
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(text);
    },
  );

  const statusInFlight = new Set<string>();
  app.post<{ Params: TokenParams }>(
    '/status/:node/:token',
    { onRequest: guard('callback') },
    async (req, reply) => {
      const machine = machineOf(req);
      const parsed = statusBody.safeParse(req.body);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = issue?.path.length ? issue.path.join('.') : 'body';
        return reply.code(400).send({ error: `${field}: ${issue?.message ?? 'invalid'}` });
      }
      if (statusInFlight.has(machine.name)) {
        return reply
          .code(503)
          .header('retry-after', '1')
          .send({ error: 'a status for this node is being recorded' });
      }
      statusInFlight.add(machine.name);
      const attempt = machines.attempt(machine.name) ?? 0;
      try {
        await withTimeout(
          options.onStatus({
            node: machine.name,
            outcome: parsed.data.outcome,
            detail: parsed.data.detail,
            attempt,
          }),
          options.statusTimeoutMs ?? 30_000,
        );
      } catch (err) {
        req.log.warn({ err, node: machine.name }, 'status not recorded; client will retry');
        return reply
          .code(503)
          .header('retry-after', '1')
          .send({ error: 'status could not be recorded, retry' });
      } finally {
        statusInFlight.delete(machine.name);
      }
      machines.revokeToken(machine.name, req.params.token);
      if (parsed.data.outcome === 'success') machines.setTarget(machine.name, 'localboot');
      emit(req, 'status', machines.get(machine.name) ?? machine, {
        path: pathOf(req),
        outcome: parsed.data.outcome,
      });
      return reply.code(200).send({ ok: true });
    },
  );

  app.route<{ Params: { version: string; '*': string } }>({
    method: ['GET', 'HEAD'],
    url: '/image/:version/*',
    handler: async (req, reply) => {
      if (req.params.version !== image.version)
        return reply.code(404).send({ error: 'unknown image version' });
      const path = safeRelativePath(req.params['*']);
      if (path === undefined) return reply.code(400).send({ error: 'bad file path' });
      const status = await serveFile(req, reply, image.source, path);
      if (req.method === 'GET') emitImageEvent(req.ip, req.url, path, status, req.log);
      return reply;
    },
  });

  await app.listen({ host: address, port: options.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : options.port;
  url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  bootContext = makeBootContext(url, image, options.boot);
  return {
    url,
    address,
    port,
    bootContext,
    close: () => {
      closing = true;
      return app.close();
    },
  };
}

function makeBootContext(baseUrl: string, image: HttpImage, boot: HttpServerOptions['boot']): BootContext {
  return {
    baseUrl,
    image: { version: image.version, kernel: image.kernel, initrd: image.initrd, repoRoot: image.repoRoot },
    ...boot,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`onStatus did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function clientIp(req: FastifyRequest): string {
  return unmapIp(req.ip);
}

function unmapIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

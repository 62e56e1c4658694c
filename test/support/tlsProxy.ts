/**
 * A TLS front for the Temporal dev server (which speaks plaintext only): throwaway certificates
 * made with the openssl CLI, and HAProxy (Debian's `haproxy`, which CI installs) terminating TLS
 * on a free port, optionally requiring a client certificate its CA signed, and forwarding the
 * plaintext to the dev server. (Not stunnel: it cannot offer HTTP/2 by ALPN, and the worker's
 * gRPC client refuses a TLS server that does not.)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CertificateFiles {
  /** PEM files: a certificate and its key. */
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string): void => {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
};

/** A self-signed CA (P-256), valid for a day. Returns its files, named `<name>.pem` and `<name>.key`. */
export function makeCa(dir: string, name: string): CertificateFiles {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      files.key,
      '-out',
      files.cert,
    ],
    dir,
  );
  return files;
}

/**
 * A leaf certificate the CA signed: for a server (`dns` is its name) or for a client. The key is
 * PKCS#8 PEM, as the Temporal SDK (rustls) and node read it.
 */
export function makeLeaf(
  dir: string,
  name: string,
  ca: CertificateFiles,
  use: { server: string } | { client: true },
): CertificateFiles {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'server' in use ? `subjectAltName=DNS:${use.server}` : `subjectAltName=DNS:${name}`,
      `extendedKeyUsage=${'server' in use ? 'serverAuth' : 'clientAuth'}`,
      '',
    ].join('\n'),
  );
  openssl(
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      `/CN=${'server' in use ? use.server : name}`,
      '-keyout',
      files.key,
      '-out',
      csr,
    ],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      csr,
      '-CA',
      ca.cert,
      '-CAkey',
      ca.key,
      '-set_serial',
      `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
      '-days',
      '1',
      '-extfile',
      ext,
      '-out',
      files.cert,
    ],
    dir,
  );
  return files;
}

export interface TlsProxy {
  /** 127.0.0.1:<port> */
  address: string;
  output: () => string;
  stop: () => Promise<void>;
}

/** Resolves when something accepts TCP connections on the port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * HAProxy on 127.0.0.1:`port` terminating TLS with the server's certificate (offering HTTP/2 by
 * ALPN, which the worker's gRPC client insists on) and forwarding the plaintext to `target`; with
 * `clientCa`, a client must present a certificate that CA signed (`verify required`) or the
 * handshake fails. Resolves once it accepts connections.
 */
export async function startTlsProxy(options: {
  dir: string;
  port: number;
  target: string;
  server: CertificateFiles;
  clientCa?: string;
}): Promise<TlsProxy> {
  // HAProxy takes the certificate and its key in one file.
  const bundle = path.join(options.dir, `proxy-${options.port}.pem`);
  writeFileSync(bundle, Buffer.concat([readFileSync(options.server.cert), readFileSync(options.server.key)]));
  const conf = path.join(options.dir, `proxy-${options.port}.cfg`);
  const verify = options.clientCa ? ` ca-file ${options.clientCa} verify required` : ' verify none';
  writeFileSync(
    conf,
    [
      'global',
      '  log stderr format raw local0 info',
      'defaults',
      '  mode tcp',
      '  log global',
      '  option tcplog',
      '  timeout connect 5s',
      '  timeout client 10m',
      '  timeout server 10m',
      'frontend temporal',
      `  bind 127.0.0.1:${options.port} ssl crt ${bundle} alpn h2${verify}`,
      '  default_backend dev_server',
      'backend dev_server',
      `  server dev ${options.target}`,
      '',
    ].join('\n'),
  );
  return startHaproxy(conf, options.port);
}

/** HAProxy with the configuration file `conf`; resolves once it accepts connections on `port`. */
export async function startHaproxy(conf: string, port: number): Promise<TlsProxy> {
  const child: ChildProcess = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let failed = false;
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  child.once('error', (err) => {
    failed = true;
    out += `\n${err.message} (is HAProxy installed? Debian: apt-get install haproxy)`;
  });
  const deadline = Date.now() + 30_000;
  while (!(await accepts(port))) {
    if (failed || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`HAProxy did not listen on ${port}:\n${out}`);
    }
    await sleep(100);
  }
  return {
    address: `127.0.0.1:${port}`,
    output: () => out,
    stop: async () => {
      if (!failed && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

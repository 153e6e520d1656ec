// blksize 8192 with a window over a 1500-byte MTU: every block travels as six IP fragments and a window arrives
// as one burst into the client's receive buffer. Linux's default buffer (212,992 bytes) holds only 15 such
// datagrams, so a 16-block window lost a block of most windows and paid a 1 s timeout for each: an 8 MB kernel
// took 4–11 s (2 MB/s) instead of well under a second. The server now shrinks the window to fit (maxWindowBytes);
// this guards that with a real client (atftp in a namespace, over a veth) and a bound far above a healthy run.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { dirResolver, startTftpServer, type TftpServer } from '../../netboot/tftp/index.ts';
import { createLossyLink, type LossyLink, makeFiles } from './helpers.ts';

const SIZE = 32 * 1024 * 1024;
/** a healthy run takes ~0.3 s; the collapse cost 15–40 s for this size */
const BOUND_MS = 10_000;

describe('tftp: blksize 8192 × windowsize 16 over a 1500-byte MTU (atftp in a namespace)', () => {
  let link: LossyLink;
  let server: TftpServer;
  let files: Awaited<ReturnType<typeof makeFiles>>;

  before(async () => {
    files = await makeFiles({ 'kernel.bin': SIZE });
    link = await createLossyLink(0);
    server = await startTftpServer({
      address: link.hostAddress,
      port: 0,
      maxBlksize: 8192,
      resolve: dirResolver(files.dir),
    });
  });
  after(async () => {
    await server?.close();
    await link?.destroy();
    await files?.cleanup();
  });

  test(`a 32 MB file arrives byte-identical within ${BOUND_MS / 1000} s`, async () => {
    const out = join(files.dir, 'out');
    const t0 = performance.now();
    const r = await execa(
      'ip',
      [
        ...['netns', 'exec', link.ns, 'atftp', '--tftp-timeout', '1', '--option', 'timeout 1'],
        ...['--option', 'blksize 8192', '--option', 'windowsize 16'],
        ...['--get', '-r', 'kernel.bin', '-l', out, link.hostAddress, String(server.port)],
      ],
      { reject: false, timeout: 120_000 },
    );
    const ms = performance.now() - t0;
    assert.equal(r.exitCode, 0, String(r.stderr));
    assert.ok((await readFile(out)).equals(files.files['kernel.bin']), 'content differs');
    const { retransmits } = server.stats();
    assert.ok(ms < BOUND_MS, `took ${Math.round(ms)} ms with ${retransmits} retransmissions`);
  });
});

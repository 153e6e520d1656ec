// 1% packet loss in each direction between atftp (in a network namespace) and our server (root namespace, on
// the veth address): every transfer of an 8 MB file completes byte-identical, windowed and lock-step.
// The kernel here has no sch_netem, so loss comes from nftables `numgen random` rules inside the namespace.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { dirResolver, startTftpServer, type TftpServer } from '../../netboot/tftp/index.ts';
import { createLossyLink, type LossyLink, makeFiles } from './helpers.ts';

describe('tftp under 1% packet loss (atftp in a namespace)', () => {
  let link: LossyLink;
  let server: TftpServer;
  let files: Awaited<ReturnType<typeof makeFiles>>;

  before(async () => {
    files = await makeFiles({ 'big.bin': 8 * 1024 * 1024 });
    link = await createLossyLink(1);
    // a short base timeout keeps the suite fast; backoff (100 ms … 1.6 s) still outlasts atftp's 1 s timeout
    server = await startTftpServer({
      address: link.hostAddress,
      port: 0,
      timeoutMs: 100,
      retries: 8,
      resolve: dirResolver(files.dir),
    });
  });
  after(async () => {
    await server?.close();
    await link?.destroy();
    await files?.cleanup();
  });

  for (const windowsize of [16, 1]) {
    test(`3 of 3 transfers complete byte-identical at windowsize ${windowsize}`, async () => {
      const runs = [1, 2, 3].map(async (i) => {
        const out = join(files.dir, `out-${windowsize}-${i}`);
        const fetch = () =>
          execa(
            'ip',
            [
              'netns',
              'exec',
              link.ns,
              'atftp',
              '--tftp-timeout',
              '1',
              '--get',
              '-r',
              'big.bin',
              '-l',
              out,
              '--option',
              'blksize 1468',
              '--option',
              `windowsize ${windowsize}`,
              link.hostAddress,
              String(server.port),
            ],
            { reject: false, timeout: 180_000 },
          );
        let r = await fetch();
        // atftp aborts when its ACK 0 was lost and the server (correctly, RFC 2347) sends the OACK again: a client
        // defect, not a lost transfer — that one handshake is retried, the data transfer itself never is
        if (r.exitCode !== 0 && /unexpected OACK/.test(String(r.stderr))) r = await fetch();
        assert.equal(r.exitCode, 0, `run ${i}: ${r.stderr.split('\n').slice(-3).join(' | ')}`);
        assert.ok((await readFile(out)).equals(files.files['big.bin']), `run ${i}: content differs`);
      });
      await Promise.all(runs);
      assert.equal(server.stats().active, 0);
    });
  }
});

// Real TFTP clients (atftp, busybox tftp, curl) fetch from our server on 127.0.0.1: byte-identical results over
// a blksize × windowsize matrix, Debian bootloaders, an in-memory per-MAC config, block-number rollover.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import {
  bootFilesResolver,
  chainResolvers,
  DEBIAN_BOOT_FILES,
  dirResolver,
  memoryResolver,
  startTftpServer,
  type TftpServer,
} from '../../netboot/tftp/index.ts';
import type { BootEvent } from '../../netboot/types.ts';
import { makeFiles, rawFetch } from './helpers.ts';

const MAC = '52:54:00:12:34:56';
const CONFIG_NAME = `pxelinux.cfg/01-${MAC.replaceAll(':', '-')}`;
const CONFIG =
  'DEFAULT install\nLABEL install\n  KERNEL vmlinuz\n  APPEND initrd=initrd.img inst.ks=http://x/ks\n';

describe('tftp server with real clients', () => {
  let server: TftpServer;
  let files: Awaited<ReturnType<typeof makeFiles>>;
  const events: BootEvent[] = [];

  before(async () => {
    files = await makeFiles({
      'big.bin': 8 * 1024 * 1024,
      'rollover.bin': 34_000_000,
      'exact.bin': 1468 * 4,
    });
    server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      maxBlksize: 8192,
      resolve: chainResolvers(
        bootFilesResolver(),
        memoryResolver({ [CONFIG_NAME]: () => CONFIG }),
        dirResolver(files.dir),
      ),
      onEvent: (e) => events.push(e),
    });
  });
  after(async () => {
    await server?.close();
    await files?.cleanup();
  });

  const local = (name: string) => join(files.dir, `out-${name}`);
  const atftp = (remote: string, out: string, opts: Record<string, number> = {}) =>
    execa(
      'atftp',
      [
        '--get',
        '-r',
        remote,
        '-l',
        out,
        ...Object.entries(opts).flatMap(([k, v]) => ['--option', `${k} ${v}`]),
        '127.0.0.1',
        String(server.port),
      ],
      { timeout: 60_000 },
    );

  for (const blksize of [512, 1468, 8192]) {
    for (const windowsize of [1, 16]) {
      test(`atftp: 8 MB byte-identical at blksize ${blksize}, windowsize ${windowsize}`, async () => {
        const out = local(`big-${blksize}-${windowsize}`);
        await atftp('big.bin', out, { blksize, windowsize });
        assert.ok((await readFile(out)).equals(files.files['big.bin']));
        await rm(out);
      });
    }
  }

  test('busybox tftp: 8 MB byte-identical at blksize 512 and 1468', async () => {
    for (const blksize of [512, 1468]) {
      const out = local(`bb-${blksize}`);
      await execa(
        'busybox',
        ['tftp', '-g', '-r', 'big.bin', '-l', out, '-b', String(blksize), '127.0.0.1', String(server.port)],
        {
          timeout: 60_000,
        },
      );
      assert.ok((await readFile(out)).equals(files.files['big.bin']));
      await rm(out);
    }
  });

  test('curl tftp://: 8 MB byte-identical at blksize 1468', async () => {
    const out = local('curl');
    await execa(
      'curl',
      ['-sS', '--tftp-blksize', '1468', '-o', out, `tftp://127.0.0.1:${server.port}/big.bin`],
      {
        timeout: 60_000,
      },
    );
    assert.ok((await readFile(out)).equals(files.files['big.bin']));
  });

  test('a file that is an exact multiple of blksize ends with an empty block', async () => {
    const out = local('exact');
    await atftp('exact.bin', out, { blksize: 1468 });
    assert.ok((await readFile(out)).equals(files.files['exact.bin']));
  });

  test('Debian bootloaders are served under their fixed names, byte-identical', async () => {
    for (const name of ['undionly.kpxe', 'ipxe.efi', 'pxelinux.0', 'ldlinux.c32']) {
      const out = local(name);
      await atftp(name, out, { blksize: 1468 });
      assert.ok((await readFile(out)).equals(await readFile(DEBIAN_BOOT_FILES[name])), name);
    }
  });

  test('the per-MAC pxelinux config comes from memory and emits pxe-config events with the MAC', async () => {
    events.length = 0;
    const out = local('cfg');
    await atftp(CONFIG_NAME, out);
    assert.equal(await readFile(out, 'utf8'), CONFIG);
    const outcomes = events.map((e) => [e.phase, e.mac, e.ip, e.detail?.outcome]);
    assert.deepEqual(outcomes, [
      ['pxe-config', MAC, '127.0.0.1', 'started'],
      ['pxe-config', MAC, '127.0.0.1', 'completed'],
    ]);
    assert.equal(events[1].detail?.bytes, CONFIG.length);
    assert.equal(events[1].detail?.file, CONFIG_NAME);
  });

  test('upper-case option names and values are honoured (OACK carries them)', async () => {
    // atftp and curl always send lower-case names, so this one speaks raw TFTP
    const got = await rawFetch(server.port, 'big.bin', {
      options: { BLKSIZE: 1468, WindowSize: 8, TSIZE: 0 },
    });
    assert.deepEqual(got.oack, { blksize: '1468', tsize: String(8 * 1024 * 1024), windowsize: '8' });
    assert.ok(got.data.equals(files.files['big.bin']));
  });

  test('block numbers roll over past 65535 (34 MB at blksize 512): atftp windowed and busybox lock-step', async () => {
    const out = local('roll');
    await atftp('rollover.bin', out, { blksize: 512, windowsize: 16 });
    assert.ok((await readFile(out)).equals(files.files['rollover.bin']));
    await rm(out);
    await execa(
      'busybox',
      ['tftp', '-g', '-r', 'rollover.bin', '-l', out, '-b', '512', '127.0.0.1', String(server.port)],
      {
        timeout: 60_000,
      },
    );
    assert.ok((await readFile(out)).equals(files.files['rollover.bin']));
    await rm(out);
  });

  test('events classify bootloader fetches; the server counts completed transfers', async () => {
    events.length = 0;
    await atftp('undionly.kpxe', local('ev'));
    assert.deepEqual(
      events.map((e) => [e.phase, e.detail?.outcome, e.mac]),
      [
        ['bootloader', 'started', undefined],
        ['bootloader', 'completed', undefined],
      ],
    );
    const stats = server.stats();
    assert.equal(stats.active, 0);
    assert.ok(stats.completed >= 10);
    assert.equal(stats.failed, 0);
  });
});

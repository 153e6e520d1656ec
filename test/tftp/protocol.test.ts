// Protocol behaviour through a raw UDP client: errors, refusals, TIDs, loss and duplicate handling, options.
import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import {
  chainResolvers,
  defaultClassifier,
  dirResolver,
  macFromPxelinuxPath,
  normalizeTftpPath,
  startTftpServer,
  type TftpServer,
} from '../../netboot/tftp/index.ts';
import { encodeAck, encodeError, encodeRequest, negotiate, OP } from '../../netboot/tftp/packet.ts';
import { blockOf, errorText, makeFiles, opcode, RawSocket, rawFetch } from './helpers.ts';

/** Sends one request and returns the first answer (code + text for an ERROR). */
async function ask(port: number, packet: Buffer) {
  const client = await RawSocket.open();
  try {
    await client.send(packet, port);
    const d = await client.next(3000);
    assert.ok(d, 'no answer');
    return { op: opcode(d.msg), code: blockOf(d.msg), text: errorText(d.msg), msg: d.msg, from: d.from };
  } finally {
    client.close();
  }
}

describe('tftp protocol (raw client)', () => {
  let server: TftpServer;
  let files: Awaited<ReturnType<typeof makeFiles>>;
  const big = 300_000; // 586 blocks of 512

  before(async () => {
    files = await makeFiles({ 'file.bin': big, 'small.txt': 100 });
    await symlink('/etc/passwd', join(files.dir, 'escape'));
    server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      timeoutMs: 200,
      retries: 3,
      resolve: chainResolvers(async (path) => {
        if (path === 'boom') throw new Error('resolver exploded');
        return undefined;
      }, dirResolver(files.dir)),
    });
  });
  after(async () => {
    await server?.close();
    await files?.cleanup();
  });

  const fetchOk = async () => {
    const got = await rawFetch(server.port, 'file.bin');
    assert.ok(got.data.equals(files.files['file.bin']));
  };

  test('a missing file gets ERROR 1 and the server keeps serving', async () => {
    const r = await ask(server.port, encodeRequest('rrq', 'nothere.bin', 'octet'));
    assert.deepEqual([r.op, r.code], [OP.ERROR, 1]);
    const atftp = await execa(
      'atftp',
      // never /dev/null: atftp deletes its local file when a fetch fails
      ['--get', '-r', 'nothere', '-l', join(files.dir, 'nothere.out'), '127.0.0.1', String(server.port)],
      {
        reject: false,
        timeout: 20_000,
      },
    );
    assert.notEqual(atftp.exitCode, 0);
    assert.match(atftp.stderr, /file not found/);
    await fetchOk();
  });

  test('path traversal is refused; absolute paths stay inside the root', async () => {
    for (const bad of ['../../etc/passwd', 'a/../../x', '..\\..\\etc\\passwd', 'x/..', '..']) {
      const r = await ask(server.port, encodeRequest('rrq', bad, 'octet'));
      assert.deepEqual([r.op, r.code], [OP.ERROR, 2], bad);
    }
    for (const outside of ['/etc/passwd', '//etc//passwd', 'escape']) {
      const r = await ask(server.port, encodeRequest('rrq', outside, 'octet'));
      assert.deepEqual([r.op, r.code], [OP.ERROR, 1], outside);
    }
    // a leading slash is stripped: "/small.txt" is the root's small.txt
    const got = await rawFetch(server.port, '/small.txt');
    assert.ok(got.data.equals(files.files['small.txt']));
  });

  test('WRQ is refused as read-only (raw and atftp --put)', async () => {
    const r = await ask(server.port, encodeRequest('wrq', 'upload.bin', 'octet'));
    assert.deepEqual([r.op, r.code, r.text], [OP.ERROR, 2, 'read-only server']);
    const put = await execa(
      'atftp',
      ['--put', '-l', join(files.dir, 'small.txt'), '-r', 'up.txt', '127.0.0.1', String(server.port)],
      { reject: false, timeout: 20_000 },
    );
    assert.notEqual(put.exitCode, 0);
    assert.match(put.stderr, /read-only/);
  });

  test('unknown opcodes get ERROR 4; netascii and odd modes are refused clearly', async () => {
    const r = await ask(server.port, Buffer.from([0, 9, 1, 2, 3]));
    assert.deepEqual([r.op, r.code], [OP.ERROR, 4]);
    const n = await ask(server.port, encodeRequest('rrq', 'small.txt', 'netascii'));
    assert.deepEqual([n.op, n.code], [OP.ERROR, 0]);
    assert.match(n.text, /netascii/);
    const m = await ask(server.port, encodeRequest('rrq', 'small.txt', 'mail'));
    assert.deepEqual([m.op, m.code], [OP.ERROR, 4]);
    await fetchOk();
  });

  test('a resolver that throws gives ERROR 0, not a crash', async () => {
    const r = await ask(server.port, encodeRequest('rrq', 'boom', 'octet'));
    assert.deepEqual([r.op, r.code], [OP.ERROR, 0]);
    await fetchOk();
  });

  test('packets from a foreign port get ERROR 5 and do not disturb the transfer', async () => {
    const intruder = await RawSocket.open();
    const failedBefore = server.stats().failed;
    let answer: Awaited<ReturnType<RawSocket['next']>>;
    try {
      const got = await rawFetch(server.port, 'file.bin', {
        onFirstData: async (tid) => {
          await intruder.send(encodeError(0, 'spoofed abort'), tid.port, tid.address);
          answer = await intruder.next(2000);
          await intruder.send(encodeAck(500), tid.port, tid.address);
        },
      });
      assert.ok(got.data.equals(files.files['file.bin']));
    } finally {
      intruder.close();
    }
    assert.ok(answer);
    assert.deepEqual([opcode(answer.msg), blockOf(answer.msg)], [OP.ERROR, 5]);
    assert.equal(server.stats().failed, failedBefore);
  });

  test('duplicate ACKs never cause a retransmission storm', async () => {
    for (const windowsize of [1, 16]) {
      const got = await rawFetch(server.port, 'file.bin', { options: { windowsize }, ackCopies: 3 });
      assert.ok(got.data.equals(files.files['file.bin']));
      assert.ok(
        got.dataPackets <= got.blocks + 2,
        `windowsize ${windowsize}: ${got.dataPackets} DATA for ${got.blocks}`,
      );
    }
  });

  test('a dropped block is retransmitted (go-back-N in a window, timeout in lock-step)', async () => {
    const windowed = await rawFetch(server.port, 'file.bin', {
      options: { windowsize: 8 },
      dropFirst: [5, 100, 101],
    });
    assert.ok(windowed.data.equals(files.files['file.bin']));
    assert.ok(windowed.dataPackets <= windowed.blocks + 3 * 8 + 3, `${windowed.dataPackets} DATA`);
    const lockstep = await rawFetch(server.port, 'file.bin', { dropFirst: [3, 586] });
    assert.ok(lockstep.data.equals(files.files['file.bin']));
    assert.ok(lockstep.dataPackets >= lockstep.blocks + 2 && lockstep.dataPackets <= lockstep.blocks + 4);
  });

  test('a silent client is given up after the retries with ERROR 0, and the transfer is freed', async () => {
    const failedBefore = server.stats().failed;
    const client = await RawSocket.open();
    try {
      await client.send(encodeRequest('rrq', 'file.bin', 'octet'), server.port);
      const seen: number[] = [];
      for (;;) {
        const d = await client.next(10_000);
        assert.ok(d, 'server went silent without an ERROR');
        seen.push(opcode(d.msg));
        if (opcode(d.msg) === OP.ERROR) {
          assert.equal(blockOf(d.msg), 0);
          assert.match(errorText(d.msg), /timeout/);
          break;
        }
      }
      assert.deepEqual(seen, [OP.DATA, OP.DATA, OP.DATA, OP.DATA, OP.ERROR]); // first copy + 3 retries
    } finally {
      client.close();
    }
    assert.equal(server.stats().failed, failedBefore + 1);
    assert.equal(server.stats().active, 0);
  });

  test('an ERROR from the client ends its transfer', async () => {
    const failedBefore = server.stats().failed;
    const client = await RawSocket.open();
    try {
      await client.send(encodeRequest('rrq', 'file.bin', 'octet'), server.port);
      const d = await client.next();
      assert.ok(d);
      await client.send(encodeError(0, 'cancelled'), d.from.port);
      assert.equal(await client.next(700), undefined, 'no retransmission after the client cancelled');
    } finally {
      client.close();
    }
    assert.equal(server.stats().failed, failedBefore + 1);
  });

  test('a retransmitted RRQ from the same port does not start a second transfer', async () => {
    const startedBefore = server.stats().started;
    const client = await RawSocket.open();
    try {
      const rrq = encodeRequest('rrq', 'small.txt', 'octet');
      await client.send(rrq, server.port);
      await client.send(rrq, server.port);
      const d = await client.next();
      assert.ok(d);
      await client.send(encodeAck(1), d.from.port);
      const extra = await client.next(300);
      assert.ok(!extra || opcode(extra.msg) !== OP.DATA || extra.from.port === d.from.port);
    } finally {
      client.close();
    }
    assert.equal(server.stats().started, startedBefore + 1);
  });

  test('the window is shrunk so blksize × windowsize stays within maxWindowBytes', async () => {
    const limits = { maxBlksize: 65464, maxWindowsize: 16, maxWindowBytes: 64 * 1024 };
    const ask = (blksize: number, windowsize: number) =>
      negotiate(
        new Map([
          ['blksize', String(blksize)],
          ['windowsize', String(windowsize)],
        ]),
        1,
        limits,
      ).oack;
    assert.deepEqual(ask(8192, 16), { blksize: 8192, windowsize: 8 });
    assert.deepEqual(ask(1468, 16), { blksize: 1468, windowsize: 16 }); // what PXE asks for is not cut
    assert.deepEqual(ask(512, 16), { blksize: 512, windowsize: 16 });
    assert.deepEqual(ask(65464, 16), { blksize: 65464, windowsize: 1 }); // never below one block
    assert.deepEqual(ask(8192, 4), { blksize: 8192, windowsize: 4 }); // a smaller request is kept

    // end to end with the server's default cap: the OACK carries the smaller window and the client follows it
    const wide = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      maxBlksize: 8192,
      resolve: dirResolver(files.dir),
    });
    try {
      const got = await rawFetch(wide.port, 'file.bin', { options: { blksize: 8192, windowsize: 16 } });
      assert.deepEqual(got.oack, { blksize: '8192', windowsize: '8' });
      assert.ok(got.data.equals(files.files['file.bin']));
      assert.equal(wide.stats().retransmits, 0);
    } finally {
      await wide.close();
    }
  });

  test('options: OACK only for accepted options, capped values, invalid values ignored, ACK 0 starts data', async () => {
    const plain = await ask(server.port, encodeRequest('rrq', 'small.txt', 'octet', { color: 'blue' }));
    assert.deepEqual([plain.op, plain.code], [OP.DATA, 1]);
    const bad = await ask(
      server.port,
      encodeRequest('rrq', 'small.txt', 'octet', { blksize: 7, windowsize: 'x' }),
    );
    assert.deepEqual([bad.op, bad.code], [OP.DATA, 1]);
    const capped = await rawFetch(server.port, 'file.bin', {
      options: { blksize: 65464, windowsize: 65535, timeout: 3, tsize: 0 },
    });
    assert.deepEqual(capped.oack, { blksize: '1468', tsize: String(big), timeout: '3', windowsize: '16' });
    assert.ok(capped.data.equals(files.files['file.bin']));
    const badTimeout = await rawFetch(server.port, 'small.txt', { options: { timeout: 0, blksize: 8 } });
    assert.deepEqual(badTimeout.oack, { blksize: '8' });
    assert.ok(badTimeout.data.equals(files.files['small.txt']));
  });
});

describe('tftp server lifecycle', () => {
  test('close() aborts active transfers with ERROR 0 and frees the port', async () => {
    const files = await makeFiles({ 'f.bin': 100_000 });
    const server = await startTftpServer({ address: '127.0.0.1', port: 0, resolve: dirResolver(files.dir) });
    const client = await RawSocket.open();
    try {
      await client.send(encodeRequest('rrq', 'f.bin', 'octet'), server.port);
      assert.equal(opcode((await client.next())!.msg), OP.DATA);
      assert.equal(server.stats().active, 1);
      await server.close();
      const d = await client.next();
      assert.ok(d);
      assert.deepEqual([opcode(d.msg), blockOf(d.msg)], [OP.ERROR, 0]);
      assert.match(errorText(d.msg), /shutting down/);
      const again = await startTftpServer({
        address: '127.0.0.1',
        port: server.port,
        resolve: dirResolver(files.dir),
      });
      await again.close();
    } finally {
      client.close();
      await server.close();
      await files.cleanup();
    }
  });

  test('bind problems are clear errors: port taken, foreign address, wildcard', async () => {
    const resolve = async () => undefined;
    const first = await startTftpServer({ address: '127.0.0.1', port: 0, resolve });
    try {
      await assert.rejects(
        startTftpServer({ address: '127.0.0.1', port: first.port, resolve }),
        /already in use/,
      );
    } finally {
      await first.close();
    }
    await assert.rejects(
      startTftpServer({ address: '192.0.2.1', port: 0, resolve }),
      /not configured on this host/,
    );
    await assert.rejects(startTftpServer({ address: '0.0.0.0', port: 0, resolve }), /wildcard/);
    await assert.rejects(startTftpServer({ address: 'eth0', port: 0, resolve }), /not an IP address/);
  });
});

describe('tftp helpers', () => {
  test('normalizeTftpPath strips, unifies and refuses', () => {
    assert.equal(normalizeTftpPath('/pxelinux.cfg/default'), 'pxelinux.cfg/default');
    assert.equal(
      normalizeTftpPath('pxelinux.cfg\\01-aa-bb-cc-dd-ee-ff'),
      'pxelinux.cfg/01-aa-bb-cc-dd-ee-ff',
    );
    assert.equal(normalizeTftpPath('./a//b/./c'), 'a/b/c');
    for (const bad of ['../x', 'a/../../x', '..\\x', 'a\u0001b'])
      assert.throws(() => normalizeTftpPath(bad), bad);
    assert.throws(() => normalizeTftpPath('///'), /empty/);
  });

  test('defaultClassifier and macFromPxelinuxPath', () => {
    assert.equal(defaultClassifier('pxelinux.cfg/01-52-54-00-12-34-56'), 'pxe-config');
    assert.equal(defaultClassifier('undionly.kpxe'), 'bootloader');
    assert.equal(defaultClassifier('ipxe.efi'), 'bootloader');
    assert.equal(defaultClassifier('pxelinux.0'), 'bootloader');
    assert.equal(defaultClassifier('ldlinux.c32'), 'bootloader');
    assert.equal(defaultClassifier('rhel9/images/pxeboot/vmlinuz'), 'kernel');
    assert.equal(defaultClassifier('rhel9/images/pxeboot/initrd.img'), 'initrd');
    assert.equal(defaultClassifier('README'), undefined);
    assert.equal(macFromPxelinuxPath('pxelinux.cfg/01-52-54-00-AB-cd-EF'), '52:54:00:ab:cd:ef');
    assert.equal(macFromPxelinuxPath('pxelinux.cfg/C0A80001'), undefined);
  });
});

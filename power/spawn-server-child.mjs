// The spawn server's process (see spawn-server.ts). Plain JavaScript on purpose: started without the tsx loader
// it stays ~40 MB, and forking a process that small costs ~1.5 ms where forking the controller costs 15–25 ms.
// Protocol over the IPC channel: {id, file, args, env, timeoutMs} → {id, exitCode, signal, stdout, stderr,
// timedOut, error}. The env (which may carry a BMC password) lives only in these messages and the child's
// environment: never on argv, never logged.
import { spawn } from 'node:child_process';

const running = new Set();

process.on('message', (req) => {
  let child;
  try {
    child = spawn(req.file, req.args, { env: req.env, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    process.send({ id: req.id, error: String(err?.message ?? err) });
    return;
  }
  running.add(child);
  const out = [];
  const err = [];
  let timedOut = false;
  let spawnError;
  child.stdout.on('data', (d) => out.push(d));
  child.stderr.on('data', (d) => err.push(d));
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, req.timeoutMs);
  child.on('error', (e) => {
    spawnError = e.message;
  });
  child.on('close', (exitCode, signal) => {
    clearTimeout(timer);
    running.delete(child);
    process.send({
      id: req.id,
      exitCode: spawnError ? null : exitCode,
      signal,
      stdout: Buffer.concat(out).toString(),
      stderr: Buffer.concat(err).toString(),
      timedOut,
      error: spawnError,
    });
  });
});

// the parent is gone (exited, crashed, SIGKILLed): nothing may outlive it
process.on('disconnect', () => {
  for (const child of running) child.kill('SIGKILL');
  process.exit(0);
});

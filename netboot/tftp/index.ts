// Public surface of the TFTP server: start it, and build resolvers for it.
export {
  chainResolvers,
  DEBIAN_BOOT_FILES,
  bootFilesResolver,
  dirResolver,
  diskFile,
  fileSourceResolver,
  memoryResolver,
} from './files.ts';
export type {
  Peer,
  TftpClassifier,
  TftpFile,
  TftpLogger,
  TftpResolver,
  TftpServer,
  TftpServerOptions,
  TftpStats,
} from './server.ts';
export { defaultClassifier, macFromPxelinuxPath, normalizeTftpPath, startTftpServer } from './server.ts';

/**
 * FUSE: the FileSystem contract, the kernel ABI and the /dev/fuse session.
 * @module
 */
export * from './file-system.js';
export { mountFuse, recommendedThreadpoolSize, unmountPath } from './session.js';
export type { FuseSession, MountFuseOptions, FuseLogger, FuseStats, InitResult } from './session.js';
export { createDeviceReader, pollingAvailable, type DeviceReader, type DeviceReadMode } from './device-reader.js';
export { Dispatcher, errnoFrom, type DispatcherOptions } from './dispatch.js';

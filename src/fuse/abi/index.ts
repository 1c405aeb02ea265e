/**
 * The FUSE kernel ABI: opcodes, constants and struct codecs. No I/O.
 * @module
 */
export * from './opcode.js';
export * from './constants.js';
export * from './header.js';
export * from './init.js';
export * from './attr.js';
export * from './open.js';
export * from './read.js';
export * from './xattr.js';
export * from './statfs.js';
export * from './dirent.js';
export * from './forget.js';
export * from './interrupt.js';
export * from './access.js';
export { need, getOffset } from './check.js';
export * from './notify.js';

/**
 * Streaming reader of OCI layer tarballs: decompression sniffing, tar parsing and safe path
 * normalisation.
 * @module
 */
export { detectLayerCompression, openLayer, type LayerCompression } from './open-layer.js';
export { parseTar } from './parse-tar.js';
export { normaliseTarPath } from './normalise-path.js';
export type { ParseTarOptions, TarEntry, TarEntryType, TarSegment, TarWarningData } from './types.js';

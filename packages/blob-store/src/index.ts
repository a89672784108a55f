// The BlobStore port's adapters. The contract suite is at `@quire/blob-store/contract`.
export { createFsBlobStore } from './fs.ts';
export type { FsBlobStoreOptions, FsRegionOptions } from './fs.ts';
export { createS3BlobStore } from './s3.ts';
export type { S3BlobStore, S3BlobStoreOptions, S3RegionOptions } from './s3.ts';
export { BLOB_METADATA_MAX_BYTES, DEFAULT_CONTENT_TYPE } from './common.ts';

// Smoke test of the global setup: the provided servers are real and answer.
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';
import { probeCql, uniqueBucket } from './index.ts';

const servers = inject('quireServers');

describe('test servers', () => {
  it('provides a Cassandra that speaks CQL', async () => {
    expect(servers.cassandra.localDataCenter).toBeTruthy();
    for (const host of servers.cassandra.contactPoints) await probeCql(host, servers.cassandra.port);
  });

  it('provides two S3 regions with working multipart uploads', async () => {
    expect(servers.s3.regions.map((r) => r.name)).toEqual(['region-a', 'region-b']);
    for (const region of servers.s3.regions) {
      const s3 = new S3Client({
        endpoint: region.endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: region.accessKeyId, secretAccessKey: region.secretAccessKey },
      });
      const Bucket = uniqueBucket('smoke');
      await s3.send(new CreateBucketCommand({ Bucket }));
      await s3.send(new PutObjectCommand({ Bucket, Key: 'a/small.txt', Body: region.name }));
      const small = await s3.send(new GetObjectCommand({ Bucket, Key: 'a/small.txt' }));
      expect(await small.Body!.transformToString()).toBe(region.name);

      const part = 5 * 1024 * 1024;
      const data = Buffer.alloc(2 * part + 1000, region.name);
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'big.bin' }));
      const parts = [];
      for (let i = 0, n = 1; i < data.length; i += part, n++) {
        const r = await s3.send(
          new UploadPartCommand({ Bucket, Key: 'big.bin', UploadId, PartNumber: n, Body: data.subarray(i, i + part) }),
        );
        parts.push({ PartNumber: n, ETag: r.ETag });
      }
      await s3.send(
        new CompleteMultipartUploadCommand({ Bucket, Key: 'big.bin', UploadId, MultipartUpload: { Parts: parts } }),
      );
      const big = await s3.send(new GetObjectCommand({ Bucket, Key: 'big.bin' }));
      expect(Buffer.from(await big.Body!.transformToByteArray()).equals(data)).toBe(true);

      for (const Key of ['a/small.txt', 'big.bin']) await s3.send(new DeleteObjectCommand({ Bucket, Key }));
      await s3.send(new DeleteBucketCommand({ Bucket }));
      s3.destroy();
    }
  });
});

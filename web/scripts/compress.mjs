// After `vite build`: a Brotli (.br) and a gzip (.gz) copy beside every text file of dist/, made once at
// build time at the highest levels, so that the gateway sends them as they are (Content-Encoding)
// instead of compressing on every request. Node's own zlib: no dependency. A copy that would not be
// smaller is not written (the gateway then sends the file itself).
import { readdir, readFile, stat, unlink, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";

const DIST = fileURLToPath(new URL("../dist/", import.meta.url));
const TEXT = /\.(html|js|mjs|css|svg|json|txt|map|webmanifest)$/;

async function* files(folder) {
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) yield* files(path);
    else if (entry.isFile()) yield path;
  }
}

function brotli(data) {
  return brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
}

const gzip = (data) => gzipSync(data, { level: constants.Z_BEST_COMPRESSION });

let written = 0;
for await (const path of files(DIST)) {
  if (!TEXT.test(path)) continue;
  const data = await readFile(path);
  for (const [suffix, compress] of [[".br", brotli], [".gz", gzip]]) {
    const packed = compress(data);
    if (packed.length < data.length) {
      await writeFile(path + suffix, packed);
      written += 1;
    } else {
      await unlink(path + suffix).catch(() => undefined); // no stale copy of an earlier build
    }
  }
  const { size } = await stat(path);
  const br = await stat(path + ".br").catch(() => null);
  console.log(`  ${relative(DIST, path)}: ${size} B${br ? `, br ${br.size} B` : ""}`);
}
console.log(`compress: ${written} pre-compressed copies in dist/`);

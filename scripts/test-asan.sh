#!/usr/bin/env bash
# The addon under AddressSanitizer + UBSan (invalid access, undefined behaviour) while the addon's
# tests run, then valgrind's leak check over a plain node script that drives every entry point.
# Builds into a temp dir (XPOLE_NATIVE points the loader there); build/Release stays untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/xpole-asan.XXXXXX)
trap 'rm -rf "$work"' EXIT

nodedir=$(node -p "process.env.npm_config_nodedir || require('path').resolve(process.execPath, '../..')")
node_inc="$nodedir/include/node"
[ -f "$node_inc/node_api.h" ] || node_inc=$(ls -d "$HOME"/.cache/node-gyp/"$(node -p process.versions.node)"/include/node 2>/dev/null || true)
[ -f "$node_inc/node_api.h" ] || { echo "test-asan: node headers not found (run npm run build once)" >&2; exit 1; }
napi_inc=$(node -p "require('node-addon-api').include_dir")
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fPIC -shared -fexceptions
       -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -DNAPI_CPP_EXCEPTIONS -I"$node_inc" -I"$napi_inc")
[ "$(uname -m)" = x86_64 ] && flags+=(-march=x86-64-v2)

echo "== building the addon with -fsanitize=address,undefined"
sources=(native/addon.cc native/fast.cc native/notify.cc native/crop.cc native/sheets.cc)
libs=()
if [ "$(sh native/probe-libdeflate.sh)" = 1 ]; then
  sources+=(native/png.cc); libs+=(-ldeflate); flags+=(-DXPOLE_HAVE_LIBDEFLATE)
fi
g++ "${flags[@]}" -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow \
  "${sources[@]}" -o "$work/asan.node" "${libs[@]}"

echo "== addon tests under ASan/UBSan"
# Node itself is not instrumented and leaks by design at exit: leaks are valgrind's job below.
LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
XPOLE_NATIVE="$work/asan.node" \
  ./node_modules/.bin/vitest run test/corners.test.ts test/corners.opencv.test.ts test/corners.orb.test.ts test/notify.test.ts test/png.test.ts test/preprocess.test.ts test/sheets.test.ts test/polish.test.ts test/fuzz/pixels.fuzz.test.ts \
  --reporter=default --outputFile.json=/dev/null

echo "== leak check: valgrind over every entry point (sync, async, crop, patches, errors, notify)"
g++ "${flags[@]}" "${sources[@]}" -o "$work/plain.node" "${libs[@]}"
cat > "$work/drive.cjs" <<'JS'
const m = require(process.argv[2]);
const w = 517, h = 389, px = new Uint8Array(w * h), px16 = new Uint16Array(w * h);
let s = 7;
for (let i = 0; i < px.length; i++) { s = (s * 1103515245 + 12345) >>> 0; px[i] = (s >>> 16) & 255; px16[i] = px[i] * 256; }
const bad = [
  () => m.detect(px, w, h, w - 1, 8, 20, 0, 0, 1, true),
  () => m.detect(px, w, h, w, 16, 20, 0, 0, 1, true),
  () => m.detect(px, w, h + 1, w, 8, 20, 0, 0, 1, true),
  () => m.detect(px, w, h, w, 8, -1, 0, 0, 1, true),
  () => m.notify('relative', 'READY=1'),
  () => m.notify('/nonexistent/xpole.sock', 'READY=1'),
];
(async () => {
  for (let round = 0; round < 3; round++) {
    for (const t of [5, 20, 60]) {
      m.detect(px, w, h, w, 8, t, 0, 0, 1, true);
      m.detect(px, w, h, w, 8, t, 50, 31, 2, true);
      m.detect(px16, w, h, w, 16, t * 256, 0, 0, 3, true);
      await m.detectAsync(px, w, h, w, 8, t, 100, 0, 2, true);
      await m.detectAsync(px16, w, h, w, 16, t * 256, 0, 0, 1, false);
    }
    for (const f of bad) { try { f(); throw new Error('expected a throw'); } catch (e) { if (e.message === 'expected a throw') throw e; } }
    // The model crop, in place and off the event loop, over a box that reaches past the frame.
    const affine = Float64Array.of(0, 0, 1, 0, 0, 1), box = Float64Array.of(-20, 10, 300, 250), out = new Float32Array(64 * 128);
    m.cropForModel(px16, w, h, 16, affine, box, 64, 128, 3, out);
    await m.cropForModelAsync(px, w, h, 8, affine, box, 64, 128, 3);
    await m.cropForModelAsync(px16, w, h, 16, affine, box, 64, 128, 3);
    await m.cropForModelAsync(px16, w, h, 16, affine, box, 64, 128, 3, true);
    await m.detectAsync(px, w, h, w, 8, 20, 0, 0, 1, true, true);
    // The polisher's patches, centred inside, on and past the frame's edges (tips-up's rotation).
    const pts = Float64Array.of(-5, 0, 200.3, w - 1, w + 4), patches = new Float32Array(5 * 2 * 32 * 32);
    m.samplePatches(px, w, h, 8, Float64Array.of(w - 1, 0, 0, 1, -1, 0), pts, pts.map((v) => v * 0.7), 32, 2 * 32 * 32, patches);
    m.samplePatches(px16, w, h, 16, affine, pts, pts, 32, 2 * 32 * 32, patches);
    m.halfSize(px16, w, h, 16);
    if (m.decodeGreyPngAsync) {
      // A 16-bit grey PNG's IDAT (rows with filter 1), then the same data cut short.
      const rows = Buffer.alloc(h * (2 * w + 1));
      for (let y = 0; y < h; y++) rows[y * (2 * w + 1)] = 1;
      const z = require('zlib').deflateSync(rows);
      await m.decodeGreyPngAsync(z, Uint32Array.of(0, z.length), w, h, 16);
      await m.decodeGreyPngAsync(z, Uint32Array.of(0, z.length >> 1), w, h, 16).then(() => { throw new Error('expected a rejection'); }, () => undefined);
    }
  }
  console.log('driver done');
})();
JS
valgrind --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=30 \
  --log-file="$work/valgrind.log" node "$work/drive.cjs" "$work/plain.node"
# V8 and node have their own at-exit noise; only records whose stack passes through the addon count.
if awk -v RS='==[0-9]+== \n' '/xpole_native|plain\.node|fast\.cc|addon\.cc|notify\.cc|png\.cc|crop\.cc|sheets\.cc/ && /(definitely lost|Invalid (read|write)|uninitialised|Mismatched)/' "$work/valgrind.log" | grep -q .; then
  echo "test-asan: valgrind found problems in the addon:" >&2
  awk -v RS='==[0-9]+== \n' '/xpole_native|plain\.node|fast\.cc|addon\.cc|notify\.cc|png\.cc|crop\.cc|sheets\.cc/ && /(definitely lost|Invalid (read|write)|uninitialised|Mismatched)/' "$work/valgrind.log" >&2
  exit 1
fi
grep -E "definitely lost|ERROR SUMMARY" "$work/valgrind.log" | sed 's/^==[0-9]*== /valgrind (whole process): /'
echo "test-asan: clean (ASan/UBSan over the addon tests, no leak or invalid access through the addon under valgrind)"

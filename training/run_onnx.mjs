// Runs the exported model through onnxruntime-node (what the product uses) so evaluate.py can
// compare it with torch: node training/run_onnx.mjs MODEL.onnx IN.f32 N OUT.f32 (inputs N x 1 x 256 x 128).
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

const [model, input, n, output] = process.argv.slice(2);
const buf = readFileSync(input);
const data = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 2 });
const result = await session.run({ input: new ort.Tensor('float32', data, [Number(n), 1, 256, 128]) });
const heat = result.heatmaps;
writeFileSync(output, Buffer.from(heat.data.buffer, heat.data.byteOffset, heat.data.byteLength));
console.error(`onnxruntime-node: heatmaps ${heat.dims.join('x')}`);

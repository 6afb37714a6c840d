import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HeatmapModel, ModelLoadError, PolishModel, sha256Hex, type LogLevel } from '../src/vision/model.ts';

// A random-weight HRNet-shaped net with the contract's shapes (made by test/fixtures/make-tiny-model.py).
const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/tiny-model.onnx');
const tmp = mkdtempSync(path.join(tmpdir(), 'xpole-model-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function collect(): { log: (l: LogLevel, m: string) => void; lines: [LogLevel, string][] } {
  const lines: [LogLevel, string][] = [];
  return { log: (l, m) => lines.push([l, m]), lines };
}

function copyFixture(name: string): string {
  const onnx = path.join(tmp, `${name}.onnx`);
  copyFileSync(FIXTURE, onnx);
  copyFileSync(FIXTURE.replace(/\.onnx$/, '.json'), path.join(tmp, `${name}.json`));
  return onnx;
}

describe('HeatmapModel.load', () => {
  it('falls back from tensorrt and cuda to cpu with a warning for each and names the provider in use', async () => {
    const { log, lines } = collect();
    const model = await HeatmapModel.load({ modelPath: FIXTURE, providers: ['tensorrt', 'cuda', 'cpu'], intraOpNumThreads: 1, log });
    try {
      expect(model.provider).toBe('cpu');
      const warnings = lines.filter(([l]) => l === 'warning').map(([, m]) => m);
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toMatch(/'tensorrt' unavailable/);
      expect(warnings[1]).toMatch(/'cuda' unavailable/);
      expect(lines.find(([l]) => l === 'info')?.[1]).toMatch(/loaded on execution provider 'cpu'/);
      expect(model.sha256).toBe(sha256Hex(readFileSync(FIXTURE)));
      expect(model.card.keypoints).toHaveLength(31);
    } finally {
      await model.close();
    }
  });

  it('fails with a clear error when no provider can run the model', async () => {
    const { log, lines } = collect();
    const load = HeatmapModel.load({ modelPath: FIXTURE, providers: ['tensorrt', 'nosuch'], intraOpNumThreads: 1, log });
    await expect(load).rejects.toThrow(ModelLoadError);
    await expect(load).rejects.toThrow(/no execution provider could run it.*tensorrt.*nosuch/);
    expect(lines.filter(([l]) => l === 'warning')).toHaveLength(2);
  });

  it('refuses a missing model, a missing card, a changed file and a corrupt file with a matching card', async () => {
    const opts = { providers: ['cpu'], intraOpNumThreads: 1 };
    await expect(HeatmapModel.load({ ...opts, modelPath: path.join(tmp, 'absent.onnx') })).rejects.toThrow(/absent\.onnx cannot be read: ENOENT/);

    const noCard = copyFixture('nocard');
    rmSync(noCard.replace(/\.onnx$/, '.json'));
    await expect(HeatmapModel.load({ ...opts, modelPath: noCard })).rejects.toThrow(/model card .*nocard\.json cannot be read/);

    const changed = copyFixture('changed');
    const bytes = readFileSync(changed);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(changed, bytes);
    await expect(HeatmapModel.load({ ...opts, modelPath: changed })).rejects.toThrow(/does not match its card .*changed\.json: sha256/);

    const corrupt = copyFixture('corrupt');
    const garbage = Buffer.from('this is not an ONNX model');
    writeFileSync(corrupt, garbage);
    const card = JSON.parse(readFileSync(corrupt.replace(/\.onnx$/, '.json'), 'utf8'));
    writeFileSync(corrupt.replace(/\.onnx$/, '.json'), JSON.stringify({ ...card, sha256: sha256Hex(garbage) }));
    await expect(HeatmapModel.load({ ...opts, modelPath: corrupt })).rejects.toThrow(/no execution provider could run it \(cpu: /);
  });

  it('refuses a card whose heatmap size disagrees with the model output', async () => {
    const wrong = copyFixture('wrongsize');
    const cardPath = wrong.replace(/\.onnx$/, '.json');
    const card = JSON.parse(readFileSync(cardPath, 'utf8'));
    writeFileSync(cardPath, JSON.stringify({ ...card, heatmap: { ...card.heatmap, width: 16 } }));
    await expect(HeatmapModel.load({ modelPath: wrong, providers: ['cpu'], intraOpNumThreads: 1 })).rejects.toThrow(
      /model output float32 \[1, 31, 64, 32\] does not match the card: float32 \[1, 31, 64, 16\]/,
    );
  });
});

describe('HeatmapModel.run', () => {
  it('gives K heatmaps per sample, batches, and is safe to call concurrently', async () => {
    const model = await HeatmapModel.load({ modelPath: FIXTURE, providers: ['cpu'], intraOpNumThreads: 1 });
    try {
      const a = Float32Array.from({ length: model.inputSize }, (_, i) => Math.sin(i / 97));
      const b = Float32Array.from({ length: model.inputSize }, (_, i) => Math.cos(i / 53));
      const [ha, hb] = await Promise.all([model.run(a, 1), model.run(b, 1)]);
      expect(ha.length).toBe(31 * 64 * 32);
      expect(ha.some((v, i) => v !== hb[i])).toBe(true);
      const both = new Float32Array(2 * model.inputSize);
      both.set(a);
      both.set(b, model.inputSize);
      const hab = await model.run(both, 2);
      expect(hab.length).toBe(2 * model.outputSize);
      let diff = 0;
      for (let i = 0; i < model.outputSize; i++) diff = Math.max(diff, Math.abs(hab[i]! - ha[i]!), Math.abs(hab[model.outputSize + i]! - hb[i]!));
      expect(diff).toBeLessThan(1e-5);
      await expect(model.run(new Float32Array(10), 1)).rejects.toThrow(/model input holds 10 values, expected 1x1x256x128/);
    } finally {
      await model.close();
    }
  });
});

describe('HeatmapModel runs off the event loop', () => {
  const SHIPPED = path.join(path.dirname(fileURLToPath(import.meta.url)), '../models/xpole-hrnet.onnx');

  it('keeps the event loop turning while a run computes, and leaves the caller its input', async () => {
    const model = await HeatmapModel.load({ modelPath: SHIPPED, providers: ['cpu'], intraOpNumThreads: 1 });
    try {
      const input = Float32Array.from({ length: model.inputSize }, (_, i) => Math.sin(i / 31));
      // Event-loop turns while one run is pending: onnxruntime-node on the main thread allows
      // about one (its run is synchronous); in the worker the loop keeps turning for the whole
      // run (several ms of HRNet on the CPU).
      let turns = 0;
      let pending = true;
      const spin = () => {
        turns++;
        if (pending) setImmediate(spin);
      };
      setImmediate(spin);
      const hm = await model.run(input, 1);
      pending = false;
      expect(hm.length).toBe(model.outputSize);
      expect(turns).toBeGreaterThan(20);
      expect(input[1]).toBe(Math.fround(Math.sin(1 / 31)));
    } finally {
      await model.close();
    }
  });

  it('refuses runs once closed, naming why', async () => {
    const model = await HeatmapModel.load({ modelPath: FIXTURE, providers: ['cpu'], intraOpNumThreads: 1 });
    await model.close();
    await expect(model.run(new Float32Array(model.inputSize), 1)).rejects.toThrow(/the model is closed/);
  });
});

describe('the int8 variant (models/xpole-hrnet-int8.onnx)', () => {
  const MODELS = path.join(path.dirname(fileURLToPath(import.meta.url)), '../models');
  const card = (name: string) => JSON.parse(readFileSync(path.join(MODELS, name), 'utf8'));

  it('was quantized from the shipped model (a new float model needs npm run quantize)', () => {
    const float = card('xpole-hrnet.json');
    const int8 = card('xpole-hrnet-int8.json');
    expect(int8.quantization.from).toEqual({ file: float.file, sha256: float.sha256 });
    expect(int8.sha256).toBe(sha256Hex(readFileSync(path.join(MODELS, int8.file))));
    expect(int8.keypoints).toEqual(float.keypoints);
    expect(int8.input).toEqual(float.input);
    expect(int8.heatmap).toEqual(float.heatmap);
  });

  it('runs int8 kernels: the file holds int8 weights, and loads and runs on the CPU provider', async () => {
    const bytes = readFileSync(path.join(MODELS, 'xpole-hrnet-int8.onnx'));
    // int8 weights: about a quarter of the float file's 6.3 MB.
    expect(bytes.length).toBeLessThan(0.4 * readFileSync(path.join(MODELS, 'xpole-hrnet.onnx')).length);
    const model = await HeatmapModel.load({ modelPath: path.join(MODELS, 'xpole-hrnet-int8.onnx'), providers: ['cpu'], intraOpNumThreads: 1 });
    try {
      expect(model.name).toBe('xpole-hrnet-int8');
      const hm = await model.run(Float32Array.from({ length: model.inputSize }, (_, i) => Math.sin(i / 31)), 1);
      expect(hm.length).toBe(model.outputSize);
      expect(hm.every(Number.isFinite)).toBe(true);
    } finally {
      await model.close();
    }
  });
});

describe('PolishModel (models/xpole-polish.onnx)', () => {
  const POLISH = path.join(path.dirname(fileURLToPath(import.meta.url)), '../models/xpole-polish.onnx');
  const opts = { providers: ['cpu'], intraOpNumThreads: 1 };

  it('loads against its card and gives one canonical offset per patch, batched', async () => {
    const { log, lines } = collect();
    const model = await PolishModel.load({ ...opts, modelPath: POLISH, log });
    try {
      expect(lines.find(([l]) => l === 'info')?.[1]).toMatch(/polish model xpole-polish-[0-9a-f]{8} .*loaded on execution provider 'cpu'/);
      expect(model.card.sha256).toBe(sha256Hex(readFileSync(POLISH)));
      const side = model.card.input.patch;
      const one = (seed: number) => Float32Array.from({ length: 2 * side * side }, (_, i) => (i < side * side ? Math.sin(i / seed) : 1));
      const a = await model.run(one(7), 1);
      const b = await model.run(one(13), 1);
      expect(a.length).toBe(2);
      const both = new Float32Array(4 * side * side);
      both.set(one(7));
      both.set(one(13), 2 * side * side);
      const ab = await model.run(both, 2);
      expect(Math.max(...[a[0]! - ab[0]!, a[1]! - ab[1]!, b[0]! - ab[2]!, b[1]! - ab[3]!].map(Math.abs))).toBeLessThan(1e-5);
      await expect(model.run(new Float32Array(10), 1)).rejects.toThrow(/polish input holds 10 values, expected 1x2x32x32/);
    } finally {
      await model.close();
    }
  });

  it('refuses a card without a usable patch size or move cap, naming the field', async () => {
    for (const [field, change, message] of [
      ['input.patch', { input: { patch: 0, anode: 1, cathode: -1 } }, /'input\.patch' must be an integer of at least 4/],
      ['input.anode', { input: { patch: 32, anode: 1, cathode: 1 } }, /'input\.anode\/cathode' must be two different numbers/],
      ['maxMovePx', { maxMovePx: -1 }, /'maxMovePx' must be a positive number/],
    ] as const) {
      const onnx = path.join(tmp, `polish-${field}.onnx`);
      copyFileSync(POLISH, onnx);
      const card = JSON.parse(readFileSync(POLISH.replace(/\.onnx$/, '.json'), 'utf8'));
      writeFileSync(onnx.replace(/\.onnx$/, '.json'), JSON.stringify({ ...card, ...change }));
      await expect(PolishModel.load({ ...opts, modelPath: onnx }), field).rejects.toThrow(message);
    }
  });
});

// Results as the pipeline makes them (SPEC's result object), for the sink tests.
import type { Reason, Result, Verdict } from '../../src/types.ts';

const NAMES = ['A0', 'C0', 'A1'];

export function makeResult(seq: number, opts: { ts?: string; verdict?: Verdict; station?: string } = {}): Result {
  const verdict = opts.verdict ?? (['PASS', 'FAIL', 'ERROR'] as const)[seq % 3]!;
  const reasons: Reason[] = verdict === 'PASS' ? [] : verdict === 'FAIL' ? ['OVERHANG_LOW'] : ['DECODE_ERROR'];
  const result: Result = {
    schema: 'xpole.result/1',
    id: `${opts.station ?? 'st1'}-${seq}`,
    seq,
    ts: opts.ts ?? new Date(Date.UTC(2026, 10, 24, 8, 0, 0) + seq * 1000).toISOString(),
    frame: `frame-${String(seq).padStart(6, '0')}.tif`,
    cellId: verdict === 'ERROR' ? null : `CELL-${seq}`,
    verdict,
    reasons,
    overhangMm: verdict === 'ERROR' ? [] : [0.61 + seq / 1000, verdict === 'FAIL' ? 0.21 : 0.72],
    poles:
      verdict === 'ERROR'
        ? []
        : NAMES.map((name, i) => ({ name, x: 400.5 + i, y: 100 + 12 * i, conf: 0.9, source: 'refined' as const })),
    roi: verdict === 'ERROR' ? null : [350, 80, 120, 400],
    timingsMs: { decode: 2.1, corners: 3.4, roi: 0.8, model: 11.2, refine: 0.6, total: 18.3 },
    model: { name: 'xpole-hrnet', sha256: 'ab'.repeat(32), provider: 'cpu' },
  };
  if (verdict === 'ERROR') result.error = 'not a PNG, TIFF, JPEG or BMP file';
  return result;
}

// An ONNX Runtime session behind src/vision/model.ts, in a worker thread: onnxruntime-node runs
// inference on the thread that calls it, so on the main thread every model run (10-20 ms on
// the CPU provider) would stop the event loop, and with it the other frame in flight, the hot
// folder, history and MQTT. Plain JavaScript, so that it loads in a worker without the
// TypeScript loader. Messages: {id, type: 'create', provider} | {id, type: 'run', input, dims}
// | {id, type: 'release'}; each is answered by {id, ...} or {id, error}.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

// ORT's own logger prints a missing provider library as an error on stderr; model.ts reports it
// through xpole's logger as a warning instead (ORT takes the level from its first session).
ort.env.logLevel = 'fatal';

const { bytes, intraOpNumThreads, spinning } = workerData;
let session = null;

async function handle(m) {
  switch (m.type) {
    case 'create':
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: [m.provider],
        intraOpNumThreads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        logSeverityLevel: 4,
        // Idle intra-op threads spin by default, burning the cores that decode and the corner
        // detector of the other frame in flight need (2 cores here, CPU provider).
        extra: { session: { intra_op: { allow_spinning: spinning ? '1' : '0' } } },
      });
      return [{}];
    case 'release':
      if (session) await session.release();
      session = null;
      return [{}];
    case 'run': {
      if (!session) throw new Error('no session: the model is not loaded');
      const out = await session.run({ input: new ort.Tensor('float32', m.input, m.dims) });
      // Each model has one output (heatmaps, or the polisher's offsets).
      const t = Object.values(out)[0];
      if (!t) return [{ output: null }];
      const data = t.data;
      const transfer = data instanceof Float32Array && data.buffer instanceof ArrayBuffer ? [data.buffer] : [];
      return [{ output: { type: t.type, dims: t.dims, data } }, transfer];
    }
    default:
      throw new Error(`unknown request '${m.type}'`);
  }
}

parentPort.on('message', (m) => {
  handle(m).then(
    ([reply, transfer]) => parentPort.postMessage({ id: m.id, ...reply }, transfer ?? []),
    (err) => parentPort.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
  );
});

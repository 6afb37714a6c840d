"""The int8 variant of a shipped model, in ONNX's QDQ form (QuantizeLinear / DequantizeLinear pairs
that ONNX Runtime's CPU provider fuses into int8 kernels, and TensorRT reads as explicit INT8).

  quantize.py probe MODEL.onnx PROBE.onnx
      MODEL with every intermediate tensor as an extra output, for training/calibrate.mts.
  quantize.py qdq MODEL.onnx RANGES.json OUT.onnx [--float-prefix P,...]
      Activations uint8, one scale per tensor from the calibrated min / max; weights int8, symmetric,
      one scale per output channel; biases int32 at input scale x weight scale. A Relu after a Conv
      or an Add is folded into that output's quantizer (zero point 0 clamps like the Relu). Nodes whose
      name starts with a --float-prefix keep float outputs, and a Conv fed by a float tensor keeps
      float weights. The model's output stays float. Writes OUT's card beside it (OUT.json).
  quantize.py metrics CARD.json EVAL.json DATASET
      Puts `xpole eval --json`'s figures for the int8 model into its card.
"""
import argparse, copy, hashlib, json, os
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def probe(src, dst):
    m = onnx.load(src)
    have = {o.name for o in m.graph.output}
    for n in m.graph.node:
        if n.op_type == 'Constant':
            continue
        for o in n.output:
            if o not in have:
                m.graph.output.append(helper.make_tensor_value_info(o, TensorProto.FLOAT, None))
    onnx.save(m, dst)
    print(f'{dst}: {len(m.graph.output)} outputs')


def uint8_params(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 or 1e-8
    return scale, int(min(255, max(0, round(-lo / scale))))


def qdq(src, ranges_path, dst, float_prefixes):
    m = onnx.load(src)
    g = m.graph
    ranges = json.load(open(ranges_path))
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    keep_float = {o for n in g.node if float_prefixes and n.name.startswith(float_prefixes) for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    # Fold a Relu into the Conv / Add before it when it is that node's only consumer.
    folded, relu_outputs = set(), set()
    for n in g.node:
        c = consumers.get(n.output[0], [])
        if (n.op_type in ('Conv', 'Add') and len(c) == 1 and c[0].op_type == 'Relu'
                and n.output[0] not in outputs and c[0].output[0] not in keep_float):
            folded.add(id(c[0]))
            relu_outputs.add(c[0].output[0])
            n.output[0] = c[0].output[0]
    nodes = [n for n in g.node if id(n) not in folded]

    params, new_nodes, new_inits, dequantized = {}, [], [], {}

    def add_init(array, name):
        new_inits.append(numpy_helper.from_array(array, name))
        return name

    def quantize_tensor(t, scale, zero):
        params[t] = (scale, zero)
        s = add_init(np.array(scale, np.float32), t + '_scale')
        z = add_init(np.array(zero, np.uint8), t + '_zero')
        new_nodes.append(helper.make_node('QuantizeLinear', [t, s, z], [t + '_q']))
        new_nodes.append(helper.make_node('DequantizeLinear', [t + '_q', s, z], [t + '_dq']))
        dequantized[t] = t + '_dq'

    def calibrated(t):
        lo = 0.0 if t in relu_outputs else float(ranges[t]['min'])
        return uint8_params(lo, float(ranges[t]['max']))

    x = g.input[0].name
    quantize_tensor(x, *calibrated(x))
    for n in nodes:
        inputs = list(n.input)
        wired = [dequantized.get(i, i) for i in inputs]
        if n.op_type == 'Conv' and inputs[0] in params:
            w = numpy_helper.to_array(inits[inputs[1]]).astype(np.float32)
            w_scale = np.abs(w).reshape(w.shape[0], -1).max(1) / 127.0
            w_scale[w_scale == 0] = 1e-8
            wq = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
            name = inputs[1]
            new_nodes.append(helper.make_node(
                'DequantizeLinear',
                [add_init(wq, name + '_q'), add_init(w_scale.astype(np.float32), name + '_scale'), add_init(np.zeros(len(w), np.int8), name + '_zero')],
                [name + '_dq'], axis=0))
            wired[1] = name + '_dq'
            if len(inputs) > 2:
                b = numpy_helper.to_array(inits[inputs[2]]).astype(np.float64)
                b_scale = (params[inputs[0]][0] * w_scale).astype(np.float32)
                name = inputs[2]
                new_nodes.append(helper.make_node(
                    'DequantizeLinear',
                    [add_init(np.round(b / b_scale).astype(np.int32), name + '_q'), add_init(b_scale, name + '_scale'), add_init(np.zeros(len(w), np.int32), name + '_zero')],
                    [name + '_dq'], axis=0))
                wired[2] = name + '_dq'
        del n.input[:]
        n.input.extend(wired)
        new_nodes.append(n)
        t = n.output[0]
        if n.op_type == 'Constant' or t in outputs or t in keep_float:
            continue
        # Upsampling for float sums only: a quantizer there would be pure cost (uint8 Resize is slow).
        if n.op_type == 'Resize' and all(c.output[0] in keep_float for c in consumers.get(t, [])):
            continue
        # Nearest-neighbour upsampling moves values, it does not change them: same scale in and out.
        quantize_tensor(t, *(params[inputs[0]] if n.op_type == 'Resize' else calibrated(t)))

    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for n in new_nodes for i in n.input}
    kept = [i for i in list(g.initializer) + new_inits if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    quantized_convs = sum(1 for n in new_nodes if n.op_type == 'Conv' and n.input[1].endswith('_dq'))
    print(f'{dst}: {quantized_convs} of {sum(1 for n in new_nodes if n.op_type == "Conv")} convolutions int8, '
          f'{len(relu_outputs)} Relu folded, {len(params)} tensors quantized')
    return quantized_convs


def write_card(src, dst, float_prefixes, quantized_convs, calibration):
    card_src = os.path.splitext(src)[0] + '.json'
    card = json.load(open(card_src))
    base = copy.deepcopy(card)
    card['name'] = base['name'] + '-int8'
    card['file'] = os.path.basename(dst)
    card['sha256'] = hashlib.sha256(open(dst, 'rb').read()).hexdigest()
    card['quantization'] = {
        'from': {'file': base['file'], 'sha256': base['sha256']},
        'format': 'QDQ (QuantizeLinear / DequantizeLinear), opset %d' % base.get('opset', 13),
        'activations': 'uint8, one scale per tensor, calibrated min / max',
        'weights': 'int8, symmetric, one scale per output channel; biases int32',
        'floatNodes': list(float_prefixes),
        'int8Convolutions': quantized_convs,
        'calibration': calibration,
        'command': 'npm run quantize (training/quantize.sh)',
    }
    # The float model's test metrics are not this model's: the int8 figures live in docs/training.md.
    card.pop('metrics', None)
    card.pop('validation', None)
    with open(os.path.splitext(dst)[0] + '.json', 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('probe'); p.add_argument('model'); p.add_argument('out')
    q = sub.add_parser('qdq'); q.add_argument('model'); q.add_argument('ranges'); q.add_argument('out')
    q.add_argument('--float-prefix', default='')
    q.add_argument('--calibration', default='', help='what the ranges were measured on, for the card')
    e = sub.add_parser('metrics'); e.add_argument('card'); e.add_argument('eval'); e.add_argument('dataset')
    a = ap.parse_args()
    if a.cmd == 'probe':
        probe(a.model, a.out)
    elif a.cmd == 'metrics':
        card = json.load(open(a.card))
        card['metrics'] = {**json.load(open(a.eval)), 'dataset': a.dataset,
                           'note': 'full pipeline with this model (xpole eval, default options), test set seed 3'}
        with open(a.card, 'w') as f:
            json.dump(card, f, indent=2)
            f.write('\n')
    else:
        prefixes = tuple(filter(None, a.float_prefix.split(',')))
        n = qdq(a.model, a.ranges, a.out, prefixes)
        write_card(a.model, a.out, prefixes, n, a.calibration)


if __name__ == '__main__':
    main()

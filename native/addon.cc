// The xpole native addon: oFAST corners (sync and on the libuv pool), the ROI stage's pixel loops,
// the model's input crop, grey PNG pixel data (on the libuv pool) and sd_notify.
// The TypeScript wrapper validates first with friendlier messages; these checks make sure a direct
// call with bad arguments throws instead of reading out of bounds.
#include <napi.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fast.h"
#include "crop.h"
#include "notify.h"
#include "sheets.h"
#ifdef XPOLE_HAVE_LIBDEFLATE
#include "png.h"
#endif

namespace {

constexpr int kMaxSide = 1 << 16;

struct DetectArgs {
  const void* data = nullptr;
  size_t bytes = 0;
  int width = 0, height = 0, depth = 8;
  size_t stride = 0;
  xpole::CornerParams params;
};

int intArg(const Napi::CallbackInfo& info, size_t i, const char* name, int lo, int hi) {
  Napi::Env env = info.Env();
  if (!info[i].IsNumber()) throw Napi::TypeError::New(env, std::string(name) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(v) || v != std::floor(v) || v < lo || v > hi)
    throw Napi::RangeError::New(env, std::string(name) + " must be an integer from " + std::to_string(lo) + " to " +
                                         std::to_string(hi) + ", got " + info[i].ToString().Utf8Value());
  return int(v);
}

// The data of the `pixels` typed array at info[i]: a Uint8Array (depth 8) or Uint16Array (depth
// 16), attached, with at least `need` elements.
const void* pixelData(const Napi::CallbackInfo& info, size_t i, int depth, size_t need, const std::string& shape) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray()) throw Napi::TypeError::New(env, "pixels must be a Uint8Array or Uint16Array");
  auto ta = info[i].As<Napi::TypedArray>();
  napi_typedarray_type want = depth == 8 ? napi_uint8_array : napi_uint16_array;
  if (ta.TypedArrayType() != want)
    throw Napi::TypeError::New(env, depth == 8 ? "pixels must be a Uint8Array for depth 8" : "pixels must be a Uint16Array for depth 16");
  // napi_get_typedarray_info gives the data pointer for ArrayBuffer and SharedArrayBuffer alike.
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, ta, &type, &length, &data, &buffer, &offset) != napi_ok)
    throw Napi::TypeError::New(env, "pixels: cannot read the typed array");
  Napi::Value buf(env, buffer);
  if (buf.IsArrayBuffer() && buf.As<Napi::ArrayBuffer>().IsDetached())
    throw Napi::TypeError::New(env, "pixels: the buffer is detached (transferred or freed)");
  if (length < need)
    throw Napi::RangeError::New(env, "pixels has " + std::to_string(length) + " elements, needs at least " + std::to_string(need) + " for " + shape);
  return data;
}

int depthArg(const Napi::CallbackInfo& info, size_t i) {
  int depth = intArg(info, i, "depth", 8, 16);
  if (depth != 8 && depth != 16) throw Napi::RangeError::New(info.Env(), "depth must be 8 or 16, got " + std::to_string(depth));
  return depth;
}

// A frame passed as (pixels, width, height, depth) in info[0..3], each side at least minSide.
struct FrameArg {
  const void* data;
  int width, height, depth;
};

FrameArg frameArg(const Napi::CallbackInfo& info, int minSide = 1) {
  FrameArg f{};
  f.depth = depthArg(info, 3);
  f.width = intArg(info, 1, "width", minSide, kMaxSide);
  f.height = intArg(info, 2, "height", minSide, kMaxSide);
  f.data = pixelData(info, 0, f.depth, size_t(f.width) * size_t(f.height), std::to_string(f.width) + "x" + std::to_string(f.height));
  return f;
}

// detect(pixels, width, height, stride, depth, threshold, maxCorners, border, threads, describe)
DetectArgs parseDetect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) throw Napi::TypeError::New(env, "detect expects 10 arguments");
  DetectArgs a;
  a.depth = depthArg(info, 4);
  a.width = intArg(info, 1, "width", 1, kMaxSide);
  a.height = intArg(info, 2, "height", 1, kMaxSide);
  a.stride = size_t(intArg(info, 3, "stride", 1, kMaxSide));
  if (a.stride < size_t(a.width))
    throw Napi::RangeError::New(env, "stride must be at least width (" + std::to_string(a.width) + "), got " + std::to_string(a.stride));
  size_t need = a.stride * size_t(a.height - 1) + size_t(a.width);
  a.data = pixelData(info, 0, a.depth, need, std::to_string(a.width) + "x" + std::to_string(a.height) + " with stride " + std::to_string(a.stride));
  a.params.threshold = intArg(info, 5, "threshold", 0, a.depth == 8 ? 255 : 65535);
  a.params.maxCorners = intArg(info, 6, "maxCorners", 0, 1 << 30);
  a.params.border = intArg(info, 7, "border", 0, kMaxSide);
  a.params.threads = intArg(info, 8, "threads", 1, 64);
  if (!info[9].IsBoolean()) throw Napi::TypeError::New(env, "describe must be a boolean");
  a.params.describe = info[9].As<Napi::Boolean>().Value();
  a.bytes = need * (a.depth / 8);
  return a;
}

void run(const DetectArgs& a, const void* data, xpole::CornerSet& out) {
  if (a.depth == 8)
    xpole::detectCorners8(static_cast<const uint8_t*>(data), a.width, a.height, a.stride, a.params, out);
  else
    xpole::detectCorners16(static_cast<const uint16_t*>(data), a.width, a.height, a.stride, a.params, out);
}

Napi::Float32Array floats(Napi::Env env, const std::vector<float>& v) {
  auto arr = Napi::Float32Array::New(env, v.size());
  if (!v.empty()) std::memcpy(arr.Data(), v.data(), v.size() * sizeof(float));
  return arr;
}

Napi::Object toJs(Napi::Env env, const xpole::CornerSet& c) {
  auto o = Napi::Object::New(env);
  o.Set("count", Napi::Number::New(env, double(c.size())));
  o.Set("x", floats(env, c.x));
  o.Set("y", floats(env, c.y));
  o.Set("score", floats(env, c.score));
  o.Set("harris", floats(env, c.harris));
  o.Set("angle", floats(env, c.angle));
  return o;
}

// Zero-copy: reads the caller's pixels in place while JavaScript waits.
Napi::Value Detect(const Napi::CallbackInfo& info) {
  DetectArgs a = parseDetect(info);
  xpole::CornerSet out;
  run(a, a.data, out);
  return toJs(info.Env(), out);
}

// The bytes an async call reads: a copy made on the event loop (JavaScript may transfer or reuse
// the buffer meanwhile), or with inPlace the caller's own, held by a reference until the call ends.
class CallerBytes {
 public:
  CallerBytes(Napi::Object owner, const void* data, size_t bytes, bool inPlace) {
    if (inPlace) {
      held_ = Napi::Persistent(owner);
      data_ = data;
    } else {
      const auto* p = static_cast<const uint8_t*>(data);
      copy_.assign(p, p + bytes);
      data_ = copy_.data();
    }
  }
  const void* data() const { return data_; }

 private:
  Napi::ObjectReference held_;
  std::vector<uint8_t> copy_;
  const void* data_ = nullptr;
};

// Off the event loop. By default the pixels are copied first: JavaScript may transfer or reuse the
// buffer meanwhile. With inPlace (the pipeline, which awaits every stage before it touches a frame
// again) they are read where they are, held by a reference: copying an 8 MB frame on the event
// loop cost more than the detection's share of the main thread (bench/pipeline.ts).
class DetectWorker : public Napi::AsyncWorker {
 public:
  DetectWorker(Napi::Env env, const DetectArgs& a, Napi::Object pixels, bool inPlace)
      : Napi::AsyncWorker(env, "xpole:corners"), args_(a), deferred_(Napi::Promise::Deferred::New(env)),
        pixels_(pixels, a.data, a.bytes, inPlace) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      run(args_, pixels_.data(), out_);
    } catch (const std::exception& e) {
      SetError(std::string("corner detection failed: ") + e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(toJs(Env(), out_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  DetectArgs args_;
  Napi::Promise::Deferred deferred_;
  CallerBytes pixels_;
  xpole::CornerSet out_;
};

// The optional inPlace flag at info[i]: read the caller's bytes where they are (see DetectWorker).
bool inPlaceArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return false;
  if (!info[i].IsBoolean()) throw Napi::TypeError::New(info.Env(), "inPlace must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

Napi::Value DetectAsync(const Napi::CallbackInfo& info) {
  DetectArgs a = parseDetect(info);
  auto* w = new DetectWorker(info.Env(), a, info[0].As<Napi::Object>(), inPlaceArg(info, 10));
  auto p = w->Promise();
  w->Queue();
  return p;
}

#ifdef XPOLE_HAVE_LIBDEFLATE
// decodeGreyPngAsync(png, idat, width, height, depth[, out[, inPlace]]): the pixels of a
// non-interlaced grey PNG whose IDAT chunks lie at idat = [offset, length, ...] in `png`; resolves
// to a Uint8Array (depth 8) or Uint16Array (depth 16) of width * height samples, rejects naming
// what is corrupt. The IDAT chunks are copied into one stream first, unless inPlace: then `png` is
// held by a reference and read by the pool thread (JavaScript leaves it unchanged until the
// promise settles). With `out` (an ArrayBuffer of at least (width * depth / 8 + 1) * height
// bytes, which JavaScript also leaves alone until then) the frame is decoded into it: a buffer
// reused from frame to frame costs no fresh pages and no external memory.

// The joined IDAT stream a pool thread keeps between frames: a 16-bit 3072² frame's, with room.
constexpr size_t kKeptIdatBytes = size_t(32) << 20;

class PngWorker : public Napi::AsyncWorker {
 public:
  PngWorker(Napi::Env env, Napi::Uint8Array png, std::vector<std::pair<size_t, size_t>> idat, size_t zBytes, int width, int height,
            int depth, Napi::ArrayBuffer out, bool inPlace)
      : Napi::AsyncWorker(env, "xpole:png"), deferred_(Napi::Promise::Deferred::New(env)), data_(png.Data()), idat_(std::move(idat)),
        zBytes_(zBytes), width_(width), height_(height), depth_(depth), bytes_(xpole::greyPngWorkBytes(width, height, depth)) {
    if (inPlace) {
      png_ = Napi::Persistent(png);
    } else {
      joinIdat(copy_);
    }
    if (!out.IsEmpty()) {
      out_ = Napi::Persistent(out);
      buf_ = static_cast<uint8_t*>(out.Data());
    }
  }
  ~PngWorker() override {
    if (out_.IsEmpty()) std::free(buf_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // The frame is decoded in place in one buffer that becomes the pixels' ArrayBuffer: no staging
  // copy, and no zero-fill of 8 MB on the JavaScript thread (Napi::ArrayBuffer::New would do one).
  void Execute() override {
    if (!buf_) buf_ = static_cast<uint8_t*>(std::malloc(bytes_));
    if (!buf_) return SetError("cannot allocate " + std::to_string(bytes_) + " bytes for the pixels");
    std::string err;
    if (png_.IsEmpty()) {
      err = xpole::decodeGreyPng(copy_.data(), zBytes_, width_, height_, depth_, buf_);
    } else {
      // The IDAT chunks joined into one stream, in this pool thread's buffer, reused frame after frame.
      thread_local std::vector<uint8_t> z;
      joinIdat(z);
      err = xpole::decodeGreyPng(z.data(), zBytes_, width_, height_, depth_, buf_);
      // A frame far larger than the usual (up to 8192² is accepted) does not stay pinned in every pool thread.
      if (z.capacity() > kKeptIdatBytes) std::vector<uint8_t>().swap(z);
    }
    if (!err.empty()) SetError(err);
  }
  void OnOK() override {
    Napi::Env env = Env();
    // The ArrayBuffer owns the memory from here (or already did: `out`); the pixels are its first part.
    Napi::ArrayBuffer ab = out_.IsEmpty() ? Napi::ArrayBuffer::New(env, buf_, bytes_, [](Napi::Env, void* data) { std::free(data); })
                                          : out_.Value();
    if (out_.IsEmpty()) buf_ = nullptr;
    size_t n = size_t(width_) * size_t(height_);
    if (depth_ == 8) deferred_.Resolve(Napi::Uint8Array::New(env, n, ab, 0));
    else deferred_.Resolve(Napi::Uint16Array::New(env, n, ab, 0));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  // The IDAT chunks, one after another: the zlib stream.
  void joinIdat(std::vector<uint8_t>& z) const {
    z.resize(zBytes_);
    size_t at = 0;
    for (const auto& [off, len] : idat_) {
      std::memcpy(z.data() + at, data_ + off, len);
      at += len;
    }
  }

  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> png_;  // inPlace: keeps the file's bytes from being collected
  std::vector<uint8_t> copy_;              // otherwise: the IDAT stream, copied on the event loop
  const uint8_t* data_;
  std::vector<std::pair<size_t, size_t>> idat_;  // [offset, length] of each IDAT chunk in the png
  size_t zBytes_;
  int width_, height_, depth_;
  size_t bytes_;
  uint8_t* buf_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> out_;
};

Napi::Value DecodeGreyPngAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 5) throw Napi::TypeError::New(env, "decodeGreyPngAsync expects 5 arguments");
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(env, "png must be a Uint8Array");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw Napi::TypeError::New(env, "idat must be a Uint32Array of [offset, length] pairs");
  auto png = info[0].As<Napi::Uint8Array>();
  auto idat = info[1].As<Napi::Uint32Array>();
  if (png.ArrayBuffer().IsDetached()) throw Napi::TypeError::New(env, "png: the buffer is detached (transferred or freed)");
  int width = intArg(info, 2, "width", 1, kMaxSide);
  int height = intArg(info, 3, "height", 1, kMaxSide);
  int depth = intArg(info, 4, "depth", 8, 16);
  if (depth != 8 && depth != 16) throw Napi::RangeError::New(env, "depth must be 8 or 16, got " + std::to_string(depth));
  if (idat.ElementLength() % 2 != 0) throw Napi::RangeError::New(env, "idat must hold [offset, length] pairs");
  Napi::ArrayBuffer out;
  if (info.Length() > 5 && !info[5].IsUndefined()) {
    if (!info[5].IsArrayBuffer()) throw Napi::TypeError::New(env, "out must be an ArrayBuffer");
    out = info[5].As<Napi::ArrayBuffer>();
    if (out.IsDetached()) throw Napi::TypeError::New(env, "out: the buffer is detached (transferred or freed)");
    size_t need = xpole::greyPngWorkBytes(width, height, depth);
    if (out.ByteLength() < need)
      throw Napi::RangeError::New(env, "out holds " + std::to_string(out.ByteLength()) + " bytes, the decode needs " + std::to_string(need));
  }
  std::vector<std::pair<size_t, size_t>> ranges;
  ranges.reserve(idat.ElementLength() / 2);
  size_t total = 0;
  for (size_t i = 0; i < idat.ElementLength(); i += 2) {
    size_t off = idat[i], len = idat[i + 1];
    if (off > png.ElementLength() || len > png.ElementLength() - off)
      throw Napi::RangeError::New(env, "idat range " + std::to_string(off) + "+" + std::to_string(len) + " lies outside the " +
                                           std::to_string(png.ElementLength()) + "-byte png");
    ranges.emplace_back(off, len);
    total += len;
  }
  auto* w = new PngWorker(env, png, std::move(ranges), total, width, height, depth, out, inPlaceArg(info, 6));
  auto p = w->Promise();
  w->Queue();
  return p;
}
#endif

// The Float64Array of n finite numbers at info[i].
Napi::Float64Array float64s(const Napi::CallbackInfo& info, size_t i, const char* name, size_t n) {
  Napi::Env env = info.Env();
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      info[i].As<Napi::Float64Array>().ElementLength() != n)
    throw Napi::TypeError::New(env, std::string(name) + " must be a Float64Array of " + std::to_string(n));
  auto a = info[i].As<Napi::Float64Array>();
  for (size_t k = 0; k < n; k++)
    if (!std::isfinite(a[k])) throw Napi::RangeError::New(env, std::string(name) + " must hold finite numbers");
  return a;
}

// Coordinates further than this from any frame are a caller's bug; within it, every sample
// position the loops compute stays far inside the integers they index with.
constexpr double kFarOff = 4.0 * kMaxSide;

// Throws a RangeError naming `name` when one of a's first n values lies beyond kFarOff.
void nearFrames(const Napi::CallbackInfo& info, const Napi::Float64Array& a, size_t n, const char* name) {
  for (size_t k = 0; k < n; k++)
    if (std::abs(a[k]) > kFarOff)
      throw Napi::RangeError::New(info.Env(), std::string(name) + " lies far outside any frame (beyond " + std::to_string(int(kFarOff)) + " px)");
}

// The canonical -> frame map at info[i]: a Float64Array [ox, oy, exx, exy, eyx, eyy] with unit coefficients.
xpole::Affine affineArg(const Napi::CallbackInfo& info, size_t i) {
  auto a = float64s(info, i, "affine", 6);
  for (size_t k = 2; k < 6; k++)
    if (std::abs(a[k]) > 1 || a[k] != std::floor(a[k]))
      throw Napi::RangeError::New(info.Env(), "affine's coefficients (exx, exy, eyx, eyy) must be -1, 0 or 1");
  nearFrames(info, a, 2, "affine's offset (ox, oy)");
  return {a[0], a[1], a[2], a[3], a[4], a[5]};
}

// stripeMean(pixels, width, height, depth, affine, window, smooth): xpole::stripeMean over a canonical
// window; affine as affineArg, window = Float64Array [x0, x1, y0, y1]. Reads the pixels in place; a run leaving the frame is clamped.
Napi::Value StripeMean(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7) throw Napi::TypeError::New(env, "stripeMean expects 7 arguments");
  const auto [data, width, height, depth] = frameArg(info);
  const xpole::Affine m = affineArg(info, 4);
  auto win = float64s(info, 5, "window", 4);
  nearFrames(info, win, 4, "window");
  const int smooth = intArg(info, 6, "smooth", 1, 255);
  if (smooth % 2 == 0) throw Napi::RangeError::New(env, "smooth must be odd, got " + std::to_string(smooth));
  double v = depth == 8 ? xpole::stripeMean8(static_cast<const uint8_t*>(data), width, height, m, win[0], win[1], win[2], win[3], smooth)
                        : xpole::stripeMean16(static_cast<const uint16_t*>(data), width, height, m, win[0], win[1], win[2], win[3], smooth);
  return Napi::Number::New(env, v);
}

// rectSums(pixels, width, height, depth, x0, y0, x1, y1, byRow): a Float64Array of the sums of
// the rectangle's rows (byRow) or columns; the rectangle must lie inside the frame.
Napi::Value RectSums(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 9) throw Napi::TypeError::New(env, "rectSums expects 9 arguments");
  const auto [data, width, height, depth] = frameArg(info);
  const int x0 = intArg(info, 4, "x0", 0, width - 1);
  const int y0 = intArg(info, 5, "y0", 0, height - 1);
  const int x1 = intArg(info, 6, "x1", x0, width - 1);
  const int y1 = intArg(info, 7, "y1", y0, height - 1);
  if (!info[8].IsBoolean()) throw Napi::TypeError::New(env, "byRow must be a boolean");
  const bool byRow = info[8].As<Napi::Boolean>().Value();
  auto out = Napi::Float64Array::New(env, size_t(byRow ? y1 - y0 + 1 : x1 - x0 + 1));
  if (depth == 8) xpole::rectSums8(static_cast<const uint8_t*>(data), width, x0, y0, x1, y1, byRow, out.Data());
  else xpole::rectSums16(static_cast<const uint16_t*>(data), width, x0, y0, x1, y1, byRow, out.Data());
  return out;
}

// cropForModel(pixels, width, height, depth, affine, box, outW, outH, samples[, out]): the model's
// input (xpole::cropForModel); affine = Float64Array [ox, oy, exx, exy, eyx, eyy] (canonical ->
// frame, unit coefficients), box = Float64Array [bx, by, bw, bh] canonical. Samples are clamped
// to the frame, so any finite box reads inside the pixels.
struct CropArgs {
  const void* data = nullptr;
  int depth = 16;
  xpole::CropSpec spec{};
};

CropArgs parseCrop(const Napi::CallbackInfo& info, size_t argc) {
  Napi::Env env = info.Env();
  if (info.Length() < argc) throw Napi::TypeError::New(env, "cropForModel expects " + std::to_string(argc) + " arguments");
  CropArgs c;
  const FrameArg f = frameArg(info);
  c.data = f.data;
  c.depth = f.depth;
  c.spec.width = f.width;
  c.spec.height = f.height;
  c.spec.a = affineArg(info, 4);
  // The crop is separable (crop.cc): each canonical axis must lie along one frame axis.
  const xpole::Affine& a = c.spec.a;
  if (!((a.exy == 0 && a.eyx == 0 && a.exx != 0 && a.eyy != 0) || (a.exx == 0 && a.eyy == 0 && a.exy != 0 && a.eyx != 0)))
    throw Napi::RangeError::New(env, "affine must map the canonical axes onto the frame's axes (an orientation's rotation or mirror)");
  auto box = float64s(info, 5, "box", 4);
  nearFrames(info, box, 4, "box");
  if (!(box[2] > 0 && box[3] > 0)) throw Napi::RangeError::New(env, "box must have a positive width and height");
  for (size_t k = 0; k < 4; k++) c.spec.box[k] = box[k];
  c.spec.outW = intArg(info, 6, "outW", 1, 4096);
  c.spec.outH = intArg(info, 7, "outH", 1, 4096);
  c.spec.s = intArg(info, 8, "samples", 1, 1024);
  return c;
}

void runCrop(const void* p, int depth, const xpole::CropSpec& c, float* out) {
  if (depth == 8) xpole::cropForModel8(static_cast<const uint8_t*>(p), c, out);
  else xpole::cropForModel16(static_cast<const uint16_t*>(p), c, out);
}

// Synchronous, reading the caller's pixels in place; writes into the Float32Array `out`.
Napi::Value CropForModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CropArgs c = parseCrop(info, 10);
  if (!info[9].IsTypedArray() || info[9].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "out must be a Float32Array");
  auto out = info[9].As<Napi::Float32Array>();
  const size_t n = size_t(c.spec.outW) * size_t(c.spec.outH);
  if (out.ElementLength() < n)
    throw Napi::RangeError::New(env, "out holds " + std::to_string(out.ElementLength()) + " values, needs " + std::to_string(n));
  runCrop(c.data, c.depth, c.spec, out.Data());
  return env.Undefined();
}

// Off the event loop; resolves to a new Float32Array. The rows the crop reads are copied first
// (a 2048² frame's ROI is a fraction of its 8 MB), unless inPlace: then the frame is read where it
// is, held by a reference (as for the corners).
class CropWorker : public Napi::AsyncWorker {
 public:
  // `rows`: the frame rows the worker reads (all of them in place).
  CropWorker(Napi::Env env, const CropArgs& c, Napi::Object pixels, xpole::RowSpan rows, bool inPlace)
      : Napi::AsyncWorker(env, "xpole:crop"), deferred_(Napi::Promise::Deferred::New(env)), spec_(c.spec), depth_(c.depth),
        pixels_(pixels, static_cast<const uint8_t*>(c.data) + size_t(rows.first) * rowBytes(c),
                size_t(rows.last - rows.first + 1) * rowBytes(c), inPlace) {
    spec_.firstRow = rows.first;
    auto ab = Napi::ArrayBuffer::New(env, size_t(spec_.outW) * size_t(spec_.outH) * sizeof(float));
    out_ = Napi::Persistent(ab);
    outData_ = static_cast<float*>(ab.Data());
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { runCrop(pixels_.data(), depth_, spec_, outData_); }
  void OnOK() override {
    deferred_.Resolve(Napi::Float32Array::New(Env(), size_t(spec_.outW) * size_t(spec_.outH), out_.Value(), 0));
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  static size_t rowBytes(const CropArgs& c) { return size_t(c.spec.width) * size_t(c.depth / 8); }

  Napi::Promise::Deferred deferred_;
  xpole::CropSpec spec_;
  int depth_;
  CallerBytes pixels_;
  Napi::Reference<Napi::ArrayBuffer> out_;
  float* outData_ = nullptr;
};

// cropForModelAsync(pixels, width, height, depth, affine, box, outW, outH, samples[, inPlace])
Napi::Value CropForModelAsync(const Napi::CallbackInfo& info) {
  CropArgs c = parseCrop(info, 9);
  const bool inPlace = inPlaceArg(info, 9);
  const xpole::RowSpan rows = inPlace ? xpole::RowSpan{0, c.spec.height - 1} : xpole::cropRows(c.spec);
  auto* w = new CropWorker(info.Env(), c, info[0].As<Napi::Object>(), rows, inPlace);
  auto p = w->Promise();
  w->Queue();
  return p;
}

// samplePatches(pixels, width, height, depth, affine, x, y, side, stride, out): the polisher's
// patches (xpole::samplePatches) centred on the finite points (x[k], y[k]) of two Float64Arrays of
// one length, patch k written from out[k * stride] on (stride >= side * side).
Napi::Value SamplePatches(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) throw Napi::TypeError::New(env, "samplePatches expects 10 arguments");
  const auto [data, width, height, depth] = frameArg(info);
  const xpole::Affine a = affineArg(info, 4);
  if (!info[5].IsTypedArray() || info[5].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw Napi::TypeError::New(env, "x must be a Float64Array");
  const size_t n = info[5].As<Napi::TypedArray>().ElementLength();
  auto xs = float64s(info, 5, "x", n);
  auto ys = float64s(info, 6, "y", n);
  nearFrames(info, xs, n, "a point's x");
  nearFrames(info, ys, n, "a point's y");
  const int side = intArg(info, 7, "side", 1, 1024);
  const size_t area = size_t(side) * size_t(side);
  const size_t stride = size_t(intArg(info, 8, "stride", 1, 1 << 30));
  if (stride < area) throw Napi::RangeError::New(env, "stride must be at least side * side (" + std::to_string(area) + ")");
  if (!info[9].IsTypedArray() || info[9].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, "out must be a Float32Array");
  auto out = info[9].As<Napi::Float32Array>();
  const size_t need = n == 0 ? 0 : (n - 1) * stride + area;
  if (out.ElementLength() < need)
    throw Napi::RangeError::New(env, "out holds " + std::to_string(out.ElementLength()) + " values, needs " + std::to_string(need));
  if (depth == 8) xpole::samplePatches8(static_cast<const uint8_t*>(data), width, height, a, xs.Data(), ys.Data(), n, side, stride, out.Data());
  else xpole::samplePatches16(static_cast<const uint16_t*>(data), width, height, a, xs.Data(), ys.Data(), n, side, stride, out.Data());
  return env.Undefined();
}

// greyRange(pixels, depth, step): [lo, hi], the 0.5th and 99.5th percentile of every step-th sample.
Napi::Value GreyRange(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3) throw Napi::TypeError::New(env, "greyRange expects 3 arguments");
  const int depth = depthArg(info, 1);
  const void* data = pixelData(info, 0, depth, 1, "a grey range");
  const size_t n = info[0].As<Napi::TypedArray>().ElementLength();
  const int step = intArg(info, 2, "step", 1, 1 << 30);
  int r[2];
  if (depth == 8) xpole::greyRange8(static_cast<const uint8_t*>(data), n, size_t(step), r);
  else xpole::greyRange16(static_cast<const uint16_t*>(data), n, size_t(step), r);
  auto out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), Napi::Number::New(env, r[0]));
  out.Set(uint32_t(1), Napi::Number::New(env, r[1]));
  return out;
}

// halfSize(pixels, width, height, depth): the 2 x 2 binned frame, a new typed array of the same kind.
Napi::Value HalfSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4) throw Napi::TypeError::New(env, "halfSize expects 4 arguments");
  const auto [data, width, height, depth] = frameArg(info, 2);
  const size_t n = size_t(width / 2) * size_t(height / 2);
  if (depth == 8) {
    auto out = Napi::Uint8Array::New(env, n);
    xpole::halfSize8(static_cast<const uint8_t*>(data), width, height, out.Data());
    return out;
  }
  auto out = Napi::Uint16Array::New(env, n);
  xpole::halfSize16(static_cast<const uint16_t*>(data), width, height, out.Data());
  return out;
}

// notify(socket, state): sends one sd_notify datagram; throws an Error saying what failed.
Napi::Value Notify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "socket must be a string");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "state must be a string");
  std::string err = xpole::sendNotify(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value());
  if (!err.empty()) throw Napi::Error::New(env, err);
  return env.Undefined();
}

Napi::Value IsDetached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw Napi::TypeError::New(env, "buffer must be an ArrayBuffer");
  return Napi::Boolean::New(env, info[0].As<Napi::ArrayBuffer>().IsDetached());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("detect", Napi::Function::New(env, Detect, "detect"));
  exports.Set("detectAsync", Napi::Function::New(env, DetectAsync, "detectAsync"));
#ifdef XPOLE_HAVE_LIBDEFLATE
  exports.Set("decodeGreyPngAsync", Napi::Function::New(env, DecodeGreyPngAsync, "decodeGreyPngAsync"));
#endif
  exports.Set("stripeMean", Napi::Function::New(env, StripeMean, "stripeMean"));
  exports.Set("rectSums", Napi::Function::New(env, RectSums, "rectSums"));
  exports.Set("cropForModel", Napi::Function::New(env, CropForModel, "cropForModel"));
  exports.Set("cropForModelAsync", Napi::Function::New(env, CropForModelAsync, "cropForModelAsync"));
  exports.Set("samplePatches", Napi::Function::New(env, SamplePatches, "samplePatches"));
  exports.Set("greyRange", Napi::Function::New(env, GreyRange, "greyRange"));
  exports.Set("halfSize", Napi::Function::New(env, HalfSize, "halfSize"));
  exports.Set("notify", Napi::Function::New(env, Notify, "notify"));
  exports.Set("isDetached", Napi::Function::New(env, IsDetached, "isDetached"));
  return exports;
}

}  // namespace

NODE_API_MODULE(xpole_native, Init)

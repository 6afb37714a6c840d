// Registration of the xpole native addon (filled in by the corner-detector work).
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return exports; }

NODE_API_MODULE(xpole_native, Init)

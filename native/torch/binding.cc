// A thin N-API layer over libtorch, shaped like tfjs-node's binding: tensors are opaque handles,
// ops are dispatched by name with an attribute object, libtorch errors become JS exceptions with
// libtorch's message. Autograd and the SGD/Adam optimizers are libtorch's own. No model knowledge
// lives here: src/evaluators/torch-model.ts walks the model description and calls these ops.
#include <napi.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

torch::Device g_device = torch::kCPU;
// Handles currently holding a tensor, over all threads (the memory-growth tests read it).
std::atomic<int64_t> g_live{0};

// Per-environment data: the addon may be loaded by several worker threads, each its own env.
struct Instance {
  Napi::FunctionReference tensor;
};

template <typename F>
auto guarded(const Napi::Env& env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, std::string("libtorch: ") + e.what_without_backtrace());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::invalid_argument& e) {  // the binding's own argument checks
    throw Napi::TypeError::New(env, e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("libtorch: ") + e.what());
  }
}

const char* dtypeName(torch::ScalarType s) {
  return s == torch::kFloat ? "float32" : s == torch::kDouble ? "float64" : s == torch::kLong ? "int64" : c10::toString(s);
}

// 'float32' | 'float64': the float dtypes a tensor can be created in or converted to. float32 is
// the engine's dtype; float64 exists for reference computations (the gradient tests' oracle).
torch::ScalarType floatDtype(const std::string& name) {
  if (name == "float32") return torch::kFloat;
  if (name == "float64") return torch::kDouble;
  throw std::invalid_argument("Expected dtype `float32` or `float64`, got `" + name + "`");
}

class Tensor : public Napi::ObjectWrap<Tensor> {
 public:
  static Napi::FunctionReference& ctor(Napi::Env env) { return env.GetInstanceData<Instance>()->tensor; }

  static Napi::Function Init(Napi::Env env) {
    Napi::Function f = DefineClass(env, "Tensor",
                                   {
                                       InstanceAccessor("shape", &Tensor::Shape, nullptr),
                                       InstanceAccessor("dtype", &Tensor::Dtype, nullptr),
                                       InstanceAccessor("disposed", &Tensor::Disposed, nullptr),
                                       InstanceAccessor("grad", &Tensor::Grad, nullptr),
                                       InstanceMethod("data", &Tensor::Data),
                                       InstanceMethod("item", &Tensor::Item),
                                       InstanceMethod("dispose", &Tensor::Dispose),
                                       InstanceMethod("backward", &Tensor::Backward),
                                       InstanceMethod("requiresGrad", &Tensor::RequiresGrad),
                                       InstanceMethod("zeroGrad", &Tensor::ZeroGrad),
                                       InstanceMethod("assign", &Tensor::Assign),
                                   });
    ctor(env) = Napi::Persistent(f);
    return f;
  }

  static Napi::Object Wrap(Napi::Env env, torch::Tensor t) {
    Napi::Object o = ctor(env).New({});
    Unwrap(o)->set(std::move(t));
    return o;
  }

  static const torch::Tensor& From(const Napi::Value& v) {
    if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor(v.Env()).Value())) {
      throw Napi::TypeError::New(v.Env(), "Expected a Tensor handle");
    }
    Tensor* h = Unwrap(v.As<Napi::Object>());
    if (!h->t_.defined()) throw Napi::Error::New(v.Env(), "Tensor handle used after dispose()");
    return h->t_;
  }

  explicit Tensor(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tensor>(info) {}
  ~Tensor() override { release(); }

 private:
  torch::Tensor t_;

  void set(torch::Tensor v) {
    if (!t_.defined() && v.defined()) g_live++;
    t_ = std::move(v);
  }
  void release() {
    if (t_.defined()) {
      t_ = torch::Tensor();
      g_live--;
    }
  }
  const torch::Tensor& self(const Napi::Env& env) {
    if (!t_.defined()) throw Napi::Error::New(env, "Tensor handle used after dispose()");
    return t_;
  }

  Napi::Value Shape(const Napi::CallbackInfo& info) {
    const auto sizes = self(info.Env()).sizes();
    Napi::Array a = Napi::Array::New(info.Env(), sizes.size());
    for (size_t i = 0; i < sizes.size(); i++) a.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
    return a;
  }
  Napi::Value Dtype(const Napi::CallbackInfo& info) {
    const auto s = self(info.Env()).scalar_type();
    return Napi::String::New(info.Env(), dtypeName(s));
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !t_.defined()); }
  Napi::Value Grad(const Napi::CallbackInfo& info) {
    const torch::Tensor& g = self(info.Env()).grad();
    return g.defined() ? Wrap(info.Env(), g) : info.Env().Null();
  }
  // float64 tensors -> Float64Array, other float tensors -> Float32Array, integer tensors ->
  // Int32Array (copies, on the CPU).
  Napi::Value Data(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guarded(env, [&]() -> Napi::Value {
      torch::NoGradGuard ng;
      const torch::Tensor& t = self(env);
      const bool isDouble = t.scalar_type() == torch::kDouble;
      const bool isFloat = t.is_floating_point();
      torch::Tensor c = t.detach().to(torch::kCPU, isDouble ? torch::kDouble : isFloat ? torch::kFloat : torch::kInt).contiguous();
      const size_t n = static_cast<size_t>(c.numel());
      if (isDouble) {
        Napi::Float64Array a = Napi::Float64Array::New(env, n);
        std::memcpy(a.Data(), c.data_ptr<double>(), n * sizeof(double));
        return a;
      }
      if (isFloat) {
        Napi::Float32Array a = Napi::Float32Array::New(env, n);
        std::memcpy(a.Data(), c.data_ptr<float>(), n * sizeof(float));
        return a;
      }
      Napi::Int32Array a = Napi::Int32Array::New(env, n);
      std::memcpy(a.Data(), c.data_ptr<int32_t>(), n * sizeof(int32_t));
      return a;
    });
  }
  Napi::Value Item(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), self(info.Env()).item<double>()); });
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }
  Napi::Value Backward(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&]() { self(info.Env()).backward(); });
    return info.Env().Undefined();
  }
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&]() { self(info.Env()).requires_grad_(info[0].ToBoolean()); });
    return info.This();
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    torch::Tensor& g = const_cast<torch::Tensor&>(self(info.Env())).mutable_grad();
    if (g.defined()) g = torch::Tensor();
    return info.Env().Undefined();
  }
  // In-place copy of another tensor's values (weights in and out of training), outside autograd.
  Napi::Value Assign(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&]() {
      torch::NoGradGuard ng;
      const_cast<torch::Tensor&>(self(info.Env())).copy_(From(info[0]));
    });
    return info.This();
  }
};

// Attribute object of an op call, with defaults.
struct Attrs {
  Napi::Object o;
  bool has(const char* k) const { return !o.IsEmpty() && o.Has(k) && !o.Get(k).IsUndefined() && !o.Get(k).IsNull(); }
  double num(const char* k, double d) const { return has(k) ? o.Get(k).ToNumber().DoubleValue() : d; }
  int64_t i64(const char* k, int64_t d) const { return has(k) ? o.Get(k).ToNumber().Int64Value() : d; }
  bool flag(const char* k, bool d) const { return has(k) ? o.Get(k).ToBoolean().Value() : d; }
  std::string str(const char* k, const std::string& d) const { return has(k) ? o.Get(k).ToString().Utf8Value() : d; }
  std::vector<int64_t> ints(const char* k, std::vector<int64_t> d) const {
    if (!has(k)) return d;
    Napi::Array a = o.Get(k).As<Napi::Array>();
    std::vector<int64_t> v(a.Length());
    for (uint32_t i = 0; i < a.Length(); i++) v[i] = a.Get(i).ToNumber().Int64Value();
    return v;
  }
};

using Inputs = std::vector<torch::Tensor>;
using Op = std::function<torch::Tensor(const Inputs&, const Attrs&)>;

torch::Tensor opt(const Inputs& in, size_t i) { return i < in.size() ? in[i] : torch::Tensor(); }

// An attribute that must be two integers ([h, w]): a pooling window, stride or padding.
std::vector<int64_t> pairOf(const Attrs& a, const char* k, std::vector<int64_t> d) {
  std::vector<int64_t> v = a.ints(k, std::move(d));
  if (v.size() != 2) throw std::invalid_argument(std::string("Expected `") + k + "` to be 2 integers, got " + std::to_string(v.size()));
  return v;
}

// conv2d with padding [top, bottom, left, right]: TensorFlow's 'same' puts the odd pixel at the
// bottom/right, which torch's symmetric padding cannot express, so that case pads explicitly.
torch::Tensor conv2d(const Inputs& in, const Attrs& a) {
  const auto p = a.ints("padding", {0, 0, 0, 0});
  torch::Tensor x = in[0];
  std::vector<int64_t> sym = {p[0], p[2]};
  if (p[0] != p[1] || p[2] != p[3]) {
    x = torch::constant_pad_nd(x, {p[2], p[3], p[0], p[1]}, 0);
    sym = {0, 0};
  }
  return torch::conv2d(x, in[1], opt(in, 2), a.ints("stride", {1, 1}), sym, a.ints("dilation", {1, 1}), a.i64("groups", 1));
}

// Batch norm with Keras' moving-average convention (moving = moving * momentum + batch * (1 -
// momentum), biased batch variance), which is what tfjs-layers does; torch's own running-stat
// update would use the unbiased variance. Inputs: x, gamma?, beta?, moving mean, moving variance.
torch::Tensor batchNorm(const Inputs& in, const Attrs& a) {
  const double eps = a.num("epsilon", 1e-3);
  if (!a.flag("training", false)) {
    return torch::batch_norm(in[0], opt(in, 1), opt(in, 2), in[3], in[4], false, 0.0, eps, true);
  }
  auto out = torch::native_batch_norm(in[0], opt(in, 1), opt(in, 2), {}, {}, true, 0.0, eps);
  if (a.flag("updateStats", true)) {
    torch::NoGradGuard ng;
    const double keep = a.num("momentum", 0.99);
    const torch::Tensor mean = std::get<1>(out).detach();
    const torch::Tensor var = std::get<2>(out).detach().pow(-2) - eps;
    in[3].mul_(keep).add_(mean, 1 - keep);
    in[4].mul_(keep).add_(var, 1 - keep);
  }
  return std::get<0>(out);
}

torch::Tensor sumAll(const Inputs& in) {
  torch::Tensor y = in[0];
  for (size_t i = 1; i < in.size(); i++) y = y + in[i];
  return y;
}

const std::unordered_map<std::string, Op>& ops() {
  static const std::unordered_map<std::string, Op> table = {
      {"conv2d", conv2d},
      {"linear", [](const Inputs& in, const Attrs&) { return torch::linear(in[0], in[1], opt(in, 2)); }},
      {"batch_norm", batchNorm},
      {"relu", [](const Inputs& in, const Attrs&) { return torch::relu(in[0]); }},
      {"clamp", [](const Inputs& in, const Attrs& a) {
         return torch::clamp(in[0], a.has("min") ? c10::optional<c10::Scalar>(a.num("min", 0)) : c10::nullopt,
                             a.has("max") ? c10::optional<c10::Scalar>(a.num("max", 0)) : c10::nullopt);
       }},
      {"leaky_relu", [](const Inputs& in, const Attrs& a) { return torch::leaky_relu(in[0], a.num("slope", 0.3)); }},
      {"elu", [](const Inputs& in, const Attrs& a) { return torch::elu(in[0], a.num("alpha", 1.0)); }},
      {"selu", [](const Inputs& in, const Attrs&) { return torch::selu(in[0]); }},
      {"sigmoid", [](const Inputs& in, const Attrs&) { return torch::sigmoid(in[0]); }},
      {"tanh", [](const Inputs& in, const Attrs&) { return torch::tanh(in[0]); }},
      {"softplus", [](const Inputs& in, const Attrs&) { return torch::softplus(in[0]); }},
      {"silu", [](const Inputs& in, const Attrs&) { return torch::silu(in[0]); }},
      {"gelu", [](const Inputs& in, const Attrs& a) { return torch::gelu(in[0], a.flag("tanh", false) ? "tanh" : "none"); }},
      {"abs", [](const Inputs& in, const Attrs&) { return torch::abs(in[0]); }},
      {"softmax", [](const Inputs& in, const Attrs& a) { return torch::softmax(in[0], a.i64("dim", -1)); }},
      {"log_softmax", [](const Inputs& in, const Attrs& a) { return torch::log_softmax(in[0], a.i64("dim", -1)); }},
      {"add", [](const Inputs& in, const Attrs&) { return sumAll(in); }},
      {"sub", [](const Inputs& in, const Attrs&) { return in[0] - in[1]; }},
      {"mul", [](const Inputs& in, const Attrs&) { return in[0] * in[1]; }},
      {"div", [](const Inputs& in, const Attrs&) { return in[0] / in[1]; }},
      {"scale", [](const Inputs& in, const Attrs& a) { return in[0] * a.num("mul", 1.0) + a.num("add", 0.0); }},
      {"cat", [](const Inputs& in, const Attrs& a) { return torch::cat(in, a.i64("dim", 1)); }},
      {"permute", [](const Inputs& in, const Attrs& a) { return in[0].permute(a.ints("dims", {})).contiguous(); }},
      {"reshape", [](const Inputs& in, const Attrs& a) { return in[0].reshape(a.ints("shape", {})); }},
      {"pad", [](const Inputs& in, const Attrs& a) { return torch::constant_pad_nd(in[0], a.ints("pads", {}), a.num("value", 0)); }},
      // Symmetric `padding` [h, w]; `ceilMode` rounds the output size up (PyTorch's rule: the last
      // window starts inside the input or its left/top padding).
      {"max_pool2d", [](const Inputs& in, const Attrs& a) {
         return torch::max_pool2d(in[0], pairOf(a, "kernel", {2, 2}), pairOf(a, "stride", {2, 2}), pairOf(a, "padding", {0, 0}), {1, 1},
                                  a.flag("ceilMode", false));
       }},
      {"avg_pool2d", [](const Inputs& in, const Attrs& a) {
         return torch::avg_pool2d(in[0], pairOf(a, "kernel", {2, 2}), pairOf(a, "stride", {2, 2}), pairOf(a, "padding", {0, 0}),
                                  a.flag("ceilMode", false), a.flag("countIncludePad", true));
       }},
      {"mean", [](const Inputs& in, const Attrs& a) { return in[0].mean(a.ints("dims", {}), a.flag("keepdim", false)); }},
      {"amax", [](const Inputs& in, const Attrs& a) { return in[0].amax(a.ints("dims", {}), a.flag("keepdim", false)); }},
      {"sum", [](const Inputs& in, const Attrs& a) {
         return a.has("dims") ? in[0].sum(a.ints("dims", {}), a.flag("keepdim", false)) : in[0].sum();
       }},
      {"dropout", [](const Inputs& in, const Attrs& a) { return torch::dropout(in[0], a.num("rate", 0.5), a.flag("training", false)); }},
      {"feature_dropout", [](const Inputs& in, const Attrs& a) {
         return torch::feature_dropout(in[0], a.num("rate", 0.5), a.flag("training", false));
       }},
      // Mean cross entropy of logits [N, K] against integer labels [N].
      {"cross_entropy", [](const Inputs& in, const Attrs&) { return torch::cross_entropy_loss(in[0], in[1].to(torch::kLong)); }},
      {"argmax", [](const Inputs& in, const Attrs& a) { return in[0].argmax(a.i64("dim", -1)); }},
      {"eq", [](const Inputs& in, const Attrs&) { return in[0].eq(in[1].to(in[0].scalar_type())); }},
      {"detach", [](const Inputs& in, const Attrs&) { return in[0].detach().clone(); }},
      // A copy in another float dtype ({ dtype: 'float32' | 'float64' }), differentiable.
      {"to", [](const Inputs& in, const Attrs& a) { return in[0].to(floatDtype(a.str("dtype", "float32")), false, true); }},
  };
  return table;
}

// Argument checks: the ops index their inputs, and from_blob reads `shape`'s product of elements,
// so a short input list or array would read past its end. Each throws std::invalid_argument, which
// `guarded` turns into a JS TypeError naming the op (or fromData) and what was expected.

// Inputs an op cannot run without (the others are optional, e.g. a conv's bias): by op, the
// positions that must hold a tensor; `-1` = every given input, at least one. Unlisted: input 0.
const std::vector<int>& requiredInputs(const std::string& op) {
  static const std::unordered_map<std::string, std::vector<int>> table = {
      {"conv2d", {0, 1}}, {"linear", {0, 1}}, {"batch_norm", {0, 3, 4}}, {"sub", {0, 1}},           {"mul", {0, 1}},
      {"div", {0, 1}},    {"eq", {0, 1}},     {"cross_entropy", {0, 1}}, {"add", {-1}},             {"cat", {-1}},
  };
  static const std::vector<int> first = {0};
  auto it = table.find(op);
  return it == table.end() ? first : it->second;
}

void checkInputs(const std::string& op, const std::vector<torch::Tensor>& in) {
  for (int i : requiredInputs(op)) {
    if (i < 0) {
      if (in.empty()) throw std::invalid_argument("Op `" + op + "` expected at least 1 input tensor, got none");
      for (size_t j = 0; j < in.size(); j++) {
        if (!in[j].defined()) throw std::invalid_argument("Op `" + op + "` expected a tensor as input " + std::to_string(j) + ", got null");
      }
    } else if (static_cast<size_t>(i) >= in.size() || !in[i].defined()) {
      throw std::invalid_argument("Op `" + op + "` expected a tensor as input " + std::to_string(i) + ", got " +
                                  (static_cast<size_t>(i) >= in.size() ? std::to_string(in.size()) + " input(s)" : std::string("null")));
    }
  }
}

// fromData's shape: non-negative integer dims whose product is the array's length.
std::vector<int64_t> checkedShape(const Napi::Value& v, size_t length) {
  if (!v.IsArray()) throw std::invalid_argument("fromData expected a shape (an array of dims), got " + v.ToString().Utf8Value());
  Napi::Array s = v.As<Napi::Array>();
  std::vector<int64_t> shape(s.Length());
  int64_t n = 1;
  std::string text;
  for (uint32_t i = 0; i < s.Length(); i++) {
    const Napi::Value d = s.Get(i);
    const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0 && x == static_cast<double>(static_cast<int64_t>(x)))) {
      throw std::invalid_argument("fromData expected shape dims to be integers >= 0, got " + d.ToString().Utf8Value() + " at " + std::to_string(i));
    }
    shape[i] = static_cast<int64_t>(x);
    n *= shape[i];
    text += (i ? "," : "") + std::to_string(shape[i]);
  }
  if (static_cast<size_t>(n) != length) {
    throw std::invalid_argument("fromData: shape [" + text + "] holds " + std::to_string(n) + " elements, the array has " + std::to_string(length));
  }
  return shape;
}

// op(name, inputs (Tensor | null)[], attrs?) -> Tensor
Napi::Value RunOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string name = info[0].ToString();
  const auto& table = ops();
  auto it = table.find(name);
  if (it == table.end()) throw Napi::Error::New(env, "Unknown op `" + name + "`");
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "Op `" + name + "`: expected an array of input tensors");
  Napi::Array arr = info[1].As<Napi::Array>();
  Inputs in(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsNull() && !v.IsUndefined()) in[i] = Tensor::From(v);
  }
  Attrs attrs{info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object()};
  return guarded(env, [&]() -> Napi::Value {
    checkInputs(name, in);
    return Tensor::Wrap(env, it->second(in, attrs));
  });
}

// fromData(Float32Array | Float64Array | Int32Array, shape, dtype?) -> Tensor (a copy; Int32Array
// becomes int64, the dtype of class labels) on the current device. Float data keeps its array's
// dtype unless `dtype` ('float32' | 'float64') names another.
Napi::Value FromData(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool hasDtype = info.Length() > 2 && info[2].IsString();
  const napi_typedarray_type kind = info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
  return guarded(env, [&]() -> Napi::Value {
    if (kind != napi_float32_array && kind != napi_float64_array && kind != napi_int32_array) {
      throw std::invalid_argument("Expected a Float32Array, Float64Array or Int32Array");
    }
    const std::vector<int64_t> shape = checkedShape(info[1], info[0].IsTypedArray() ? info[0].As<Napi::TypedArray>().ElementLength() : 0);
    torch::Tensor t;
    if (kind == napi_float32_array || kind == napi_float64_array) {
      const torch::ScalarType from = kind == napi_float32_array ? torch::kFloat : torch::kDouble;
      const torch::ScalarType to = hasDtype ? floatDtype(info[2].As<Napi::String>().Utf8Value()) : from;
      void* data = kind == napi_float32_array ? static_cast<void*>(info[0].As<Napi::Float32Array>().Data())
                                              : static_cast<void*>(info[0].As<Napi::Float64Array>().Data());
      const torch::Tensor view = torch::from_blob(data, shape, from);
      t = to == from ? view.clone() : view.to(to);
    } else if (kind == napi_int32_array) {
      Napi::Int32Array a = info[0].As<Napi::Int32Array>();
      t = torch::from_blob(a.Data(), shape, torch::kInt).to(torch::kLong);
    } else {
      throw Napi::TypeError::New(env, "Expected a Float32Array, Float64Array or Int32Array");
    }
    return Tensor::Wrap(env, g_device.is_cpu() ? t : t.to(g_device));
  });
}

class Optimizer : public Napi::ObjectWrap<Optimizer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Optimizer",
                       {InstanceMethod("step", &Optimizer::Step), InstanceMethod("zeroGrad", &Optimizer::ZeroGrad),
                        InstanceMethod("save", &Optimizer::Save), InstanceMethod("load", &Optimizer::Load)});
  }

  // new Optimizer('sgd' | 'adam', [{ params: Tensor[], weightDecay }], { lr, momentum, nesterov, beta1, beta2, epsilon })
  // weightDecay is libtorch's coupled L2 (added to the gradient), per parameter group.
  explicit Optimizer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Optimizer>(info) {
    Napi::Env env = info.Env();
    kind_ = info[0].ToString();
    Napi::Array groups = info[1].As<Napi::Array>();
    Attrs a{info[2].As<Napi::Object>()};
    guarded(env, [&]() {
      std::vector<torch::optim::OptimizerParamGroup> pg;
      for (uint32_t g = 0; g < groups.Length(); g++) {
        Attrs ga{groups.Get(g).As<Napi::Object>()};
        Napi::Array ps = ga.o.Get("params").As<Napi::Array>();
        std::vector<torch::Tensor> params;
        for (uint32_t i = 0; i < ps.Length(); i++) params.push_back(Tensor::From(ps.Get(i)));
        const double wd = ga.num("weightDecay", 0);
        if (kind_ == "sgd") {
          pg.emplace_back(params, std::make_unique<torch::optim::SGDOptions>(
                                      torch::optim::SGDOptions(a.num("lr", 0.1)).momentum(a.num("momentum", 0)).nesterov(a.flag("nesterov", false)).weight_decay(wd)));
        } else if (kind_ == "adam") {
          pg.emplace_back(params, std::make_unique<torch::optim::AdamOptions>(
                                      torch::optim::AdamOptions(a.num("lr", 1e-3))
                                          .betas({a.num("beta1", 0.9), a.num("beta2", 0.999)})
                                          .eps(a.num("epsilon", 1e-7))
                                          .weight_decay(wd)));
        } else {
          throw Napi::Error::New(env, "Unknown optimizer `" + kind_ + "`; expected sgd or adam");
        }
      }
      if (kind_ == "sgd") {
        opt_ = std::make_unique<torch::optim::SGD>(std::move(pg), torch::optim::SGDOptions(a.num("lr", 0.1)));
      } else {
        opt_ = std::make_unique<torch::optim::Adam>(std::move(pg), torch::optim::AdamOptions(a.num("lr", 1e-3)));
      }
    });
  }

 private:
  std::string kind_;
  std::unique_ptr<torch::optim::Optimizer> opt_;

  // step(lr): the learning rate of this step (the schedule lives in TypeScript).
  Napi::Value Step(const Napi::CallbackInfo& info) {
    const double lr = info[0].ToNumber().DoubleValue();
    guarded(info.Env(), [&]() {
      for (auto& g : opt_->param_groups()) {
        if (kind_ == "sgd") static_cast<torch::optim::SGDOptions&>(g.options()).lr(lr);
        else static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      }
      opt_->step();
    });
    return info.Env().Undefined();
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    guarded(info.Env(), [&]() { opt_->zero_grad(); });
    return info.Env().Undefined();
  }
  Napi::Value Save(const Napi::CallbackInfo& info) {
    const std::string path = info[0].ToString();
    guarded(info.Env(), [&]() { torch::save(*opt_, path); });
    return info.Env().Undefined();
  }
  Napi::Value Load(const Napi::CallbackInfo& info) {
    const std::string path = info[0].ToString();
    guarded(info.Env(), [&]() { torch::load(*opt_, path); });
    return info.Env().Undefined();
  }
};

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  torch::set_num_threads(static_cast<int>(info[0].ToNumber().Int32Value()));
  return info.Env().Undefined();
}
Napi::Value GetThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), torch::get_num_threads()); }
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  torch::autograd::GradMode::set_enabled(info[0].ToBoolean());
  return info.Env().Undefined();
}
Napi::Value LiveTensors(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(g_live.load())); }
Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  torch::manual_seed(static_cast<uint64_t>(info[0].ToNumber().Int64Value()));
  return info.Env().Undefined();
}
// useDevice('cpu' | 'cuda') -> the device now used for new tensors.
Napi::Value UseDevice(const Napi::CallbackInfo& info) {
  const std::string d = info[0].ToString();
  if (d == "cuda" && !torch::cuda::is_available()) throw Napi::Error::New(info.Env(), "CUDA requested but libtorch sees no CUDA device");
  g_device = d == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  return Napi::String::New(info.Env(), g_device.str());
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new Instance());
  exports.Set("Tensor", Tensor::Init(env));
  exports.Set("Optimizer", Optimizer::Init(env));
  exports.Set("op", Napi::Function::New(env, RunOp));
  exports.Set("fromData", Napi::Function::New(env, FromData));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("useDevice", Napi::Function::New(env, UseDevice));
  exports.Set("version", Napi::String::New(env, TORCH_VERSION));
  exports.Set("cudaAvailable", Napi::Boolean::New(env, torch::cuda::is_available()));
  return exports;
}

}  // namespace

NODE_API_MODULE(autoprune_torch, Init)

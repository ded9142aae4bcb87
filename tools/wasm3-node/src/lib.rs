//! wasm3-node: the wasm3 interpreter (the engine edge-flash boards run) as a Node addon.
//!
//! One `Runtime` holds one wasm3 environment, runtime and module. Host functions are JS functions
//! linked by module, name and wasm3 signature ('v(iIfF)': v void, i i32, I i64, f f32, F f64); they
//! run synchronously inside `call`, on the JS thread that called it. A JS exception thrown by a host
//! function becomes a wasm3 trap, and `call` rethrows it as a JS Error with the same message.
//!
//! Linear memory is handed out as Buffers that point straight at wasm3's memory. When memory moves
//! (it grew) or the runtime is freed, every Buffer handed out before is detached (length 0), so a
//! stale view can never read freed memory.

use std::ffi::{c_void, CStr, CString};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::{sys, Env, JsFunction, JsUnknown, NapiValue, Ref, ValueType};
use napi_derive::napi;
use wasm3x_sys as ffi;

/// The marker a host trampoline returns to wasm3 when the JS function threw; the message is kept in
/// `State::host_error`.
static HOST_TRAP: &[u8] = b"host function failed\0";

struct HostFn {
    state: *mut State,
    func: Ref<()>,
    ret: u8,
    args: Vec<u8>,
    _module: CString,
    _name: CString,
    _sig: CString,
}

struct State {
    env: ffi::IM3Environment,
    runtime: ffi::IM3Runtime,
    module: ffi::IM3Module,
    module_loaded: bool,
    wasm: Vec<u8>, // wasm3 keeps pointers into the module bytes: they live as long as the runtime
    hosts: Vec<Box<HostFn>>,
    host_error: Option<String>,
    napi_env: sys::napi_env,
    views: Vec<sys::napi_ref>, // ArrayBuffers handed out over linear memory
    view_ptr: usize,
    view_len: usize,
}

fn m3_err(r: ffi::M3Result) -> Option<String> {
    if r.is_null() {
        None
    } else {
        Some(unsafe { CStr::from_ptr(r) }.to_string_lossy().into_owned())
    }
}

fn parse_sig(sig: &str) -> Result<(u8, Vec<u8>)> {
    let b = sig.as_bytes();
    let ok = b.len() >= 3 && b[1] == b'(' && b[b.len() - 1] == b')';
    let valid = |c: &u8| matches!(c, b'i' | b'I' | b'f' | b'F');
    if !ok || !(b[0] == b'v' || valid(&b[0])) || !b[2..b.len() - 1].iter().all(valid) {
        return Err(Error::from_reason(format!("bad wasm3 signature '{sig}': expected e.g. 'v(ii)' or 'i(iIfF)'")));
    }
    Ok((b[0], b[2..b.len() - 1].to_vec()))
}

unsafe fn take_exception_message(env: sys::napi_env) -> String {
    let mut exc: sys::napi_value = ptr::null_mut();
    if sys::napi_get_and_clear_last_exception(env, &mut exc) != sys::Status::napi_ok || exc.is_null() {
        return "host function failed".into();
    }
    let e = Env::from_raw(env);
    let unknown = JsUnknown::from_raw_unchecked(env, exc);
    if let Ok(obj) = unknown.coerce_to_object() {
        if let Ok(msg) = obj.get_named_property::<JsUnknown>("message") {
            if let Ok(s) = msg.coerce_to_string().and_then(|s| s.into_utf8()).and_then(|s| s.into_owned()) {
                return s;
            }
        }
    }
    let _ = e;
    "host function threw a non-Error value".into()
}

unsafe extern "C" fn trampoline(
    _runtime: ffi::IM3Runtime,
    ctx: ffi::IM3ImportContext,
    sp: *mut u64,
    _mem: *mut c_void,
) -> *const c_void {
    let host = &*((*ctx).userdata as *const HostFn);
    let state = &mut *host.state;
    let env = Env::from_raw(state.napi_env);
    let nret = usize::from(host.ret != b'v');
    let run = || -> Result<()> {
        let mut args: Vec<JsUnknown> = Vec::with_capacity(host.args.len());
        for (i, t) in host.args.iter().enumerate() {
            let slot = sp.add(nret + i);
            let v = match t {
                b'i' => env.create_int32(*(slot as *const i32))?.into_unknown(),
                b'I' => env.create_bigint_from_i64(*(slot as *const i64))?.into_unknown()?,
                b'f' => env.create_double(*(slot as *const f32) as f64)?.into_unknown(),
                _ => env.create_double(*(slot as *const f64))?.into_unknown(),
            };
            args.push(v);
        }
        let func: JsFunction = env.get_reference_value(&host.func)?;
        let r = func.call(None, &args)?;
        match host.ret {
            b'v' => {}
            b'i' => *(sp as *mut i32) = to_f64(r)? as i64 as i32,
            b'I' => *(sp as *mut i64) = to_i64(r)?,
            b'f' => *(sp as *mut f32) = to_f64(r)? as f32,
            _ => *(sp as *mut f64) = to_f64(r)?,
        }
        Ok(())
    };
    match run() {
        Ok(()) => ptr::null(),
        Err(e) => {
            let msg = if e.status == Status::PendingException { take_exception_message(state.napi_env) } else { e.reason };
            state.host_error = Some(msg);
            HOST_TRAP.as_ptr() as *const c_void
        }
    }
}

fn to_f64(v: JsUnknown) -> Result<f64> {
    match v.get_type()? {
        ValueType::BigInt => Ok(to_i64(v)? as f64),
        ValueType::Undefined => Ok(0.0),
        _ => v.coerce_to_number()?.get_double(),
    }
}

fn to_i64(v: JsUnknown) -> Result<i64> {
    match v.get_type()? {
        ValueType::BigInt => {
            let b = unsafe { v.cast::<napi::JsBigInt>() };
            Ok(b.get_i64()?.0)
        }
        ValueType::Undefined => Ok(0),
        _ => Ok(v.coerce_to_number()?.get_double()? as i64),
    }
}

/// One wasm3 environment + runtime + module.
#[napi]
pub struct Runtime {
    state: Box<State>,
}

#[napi]
impl Runtime {
    /// `stackBytes`: the interpreter stack (wasm3's `m3_NewRuntime` stack size).
    #[napi(constructor)]
    pub fn new(stack_bytes: u32) -> Result<Self> {
        unsafe {
            let env = ffi::m3_NewEnvironment();
            if env.is_null() {
                return Err(Error::from_reason("wasm3: cannot create an environment"));
            }
            let runtime = ffi::m3_NewRuntime(env, stack_bytes, ptr::null_mut());
            if runtime.is_null() {
                ffi::m3_FreeEnvironment(env);
                return Err(Error::from_reason(format!("wasm3: cannot create a runtime with a {stack_bytes}-byte stack")));
            }
            Ok(Runtime {
                state: Box::new(State {
                    env,
                    runtime,
                    module: ptr::null_mut(),
                    module_loaded: false,
                    wasm: Vec::new(),
                    hosts: Vec::new(),
                    host_error: None,
                    napi_env: ptr::null_mut(),
                    views: Vec::new(),
                    view_ptr: 0,
                    view_len: 0,
                }),
            })
        }
    }

    /// Parses and loads a module into the runtime (one module per runtime).
    #[napi]
    pub fn load(&mut self, wasm: Buffer) -> Result<()> {
        let s = &mut *self.state;
        if !s.module.is_null() {
            return Err(Error::from_reason("wasm3: this runtime already holds a module"));
        }
        s.wasm = wasm.to_vec();
        unsafe {
            let mut module: ffi::IM3Module = ptr::null_mut();
            if let Some(e) = m3_err(ffi::m3_ParseModule(s.env, &mut module, s.wasm.as_ptr(), s.wasm.len() as u32)) {
                return Err(Error::from_reason(format!("wasm3: parse: {e}")));
            }
            if let Some(e) = m3_err(ffi::m3_LoadModule(s.runtime, module)) {
                ffi::m3_FreeModule(module);
                return Err(Error::from_reason(format!("wasm3: load: {e}")));
            }
            s.module = module;
            s.module_loaded = true;
        }
        Ok(())
    }

    /// Links a JS function as the import `module.name` with a wasm3 signature such as 'v(ii)'.
    #[napi]
    pub fn link(&mut self, env: Env, module: String, name: String, sig: String, func: JsFunction) -> Result<()> {
        let s = &mut *self.state;
        if s.module.is_null() {
            return Err(Error::from_reason("wasm3: load a module before linking imports"));
        }
        let (ret, args) = parse_sig(&sig)?;
        let host = Box::new(HostFn {
            state: s as *mut State,
            func: env.create_reference(func)?,
            ret,
            args,
            _module: CString::new(module.clone())?,
            _name: CString::new(name.clone())?,
            _sig: CString::new(sig.clone())?,
        });
        let r = unsafe {
            ffi::m3_LinkRawFunctionEx(
                s.module,
                host._module.as_ptr(),
                host._name.as_ptr(),
                host._sig.as_ptr(),
                Some(trampoline),
                &*host as *const HostFn as *const c_void,
            )
        };
        match m3_err(r) {
            // wasm3 answers "function lookup failed" when the module does not import it: not an error
            Some(e) if !e.contains("function lookup failed") => Err(Error::from_reason(format!("wasm3: link {module}.{name} {sig}: {e}"))),
            _ => {
                s.hosts.push(host);
                Ok(())
            }
        }
    }

    /// Calls an export. Arguments follow the export's signature (i64 as BigInt); returns its result
    /// (undefined for none). A trap throws an Error carrying wasm3's message.
    #[napi(ts_args_type = "name: string, args: Array<number | bigint>", ts_return_type = "number | bigint | undefined")]
    pub fn call(&mut self, env: Env, name: String, args: Vec<JsUnknown>) -> Result<JsUnknown> {
        let s = &mut *self.state;
        if s.module.is_null() {
            return Err(Error::from_reason("wasm3: no module loaded"));
        }
        let cname = CString::new(name.clone())?;
        unsafe {
            let mut f: ffi::IM3Function = ptr::null_mut();
            if let Some(e) = m3_err(ffi::m3_FindFunction(&mut f, s.runtime, cname.as_ptr())) {
                return Err(Error::from_reason(format!("wasm3: export '{name}': {e}")));
            }
            let argc = ffi::m3_GetArgCount(f) as usize;
            if args.len() != argc {
                return Err(Error::from_reason(format!("wasm3: export '{name}' takes {argc} arguments, got {}", args.len())));
            }
            let mut slots = vec![0u64; argc];
            for (i, a) in args.into_iter().enumerate() {
                let p = &mut slots[i] as *mut u64;
                match ffi::m3_GetArgType(f, i as u32) {
                    ffi::M3ValueType::c_m3Type_i32 => *(p as *mut i32) = to_f64(a)? as i64 as i32,
                    ffi::M3ValueType::c_m3Type_i64 => *(p as *mut i64) = to_i64(a)?,
                    ffi::M3ValueType::c_m3Type_f32 => *(p as *mut f32) = to_f64(a)? as f32,
                    ffi::M3ValueType::c_m3Type_f64 => *(p as *mut f64) = to_f64(a)?,
                    t => return Err(Error::from_reason(format!("wasm3: export '{name}' argument {i} has unsupported type {t}"))),
                }
            }
            let ptrs: Vec<*const c_void> = slots.iter().map(|v| v as *const u64 as *const c_void).collect();
            s.napi_env = env.raw();
            s.host_error = None;
            let r = ffi::m3_Call(f, argc as u32, ptrs.as_ptr() as *mut *const c_void);
            s.napi_env = ptr::null_mut();
            self.refresh_views(env)?;
            let s = &mut *self.state;
            if let Some(e) = m3_err(r) {
                let msg = match s.host_error.take() {
                    Some(h) if r as *const u8 == HOST_TRAP.as_ptr() => h,
                    _ => format!("wasm3: {e} (in '{name}')"),
                };
                return Err(Error::from_reason(msg));
            }
            match ffi::m3_GetRetCount(f) {
                0 => env.get_undefined().map(|u| u.into_unknown()),
                _ => {
                    let mut out = 0u64;
                    let outp = [&mut out as *mut u64 as *const c_void];
                    if let Some(e) = m3_err(ffi::m3_GetResults(f, 1, outp.as_ptr() as *mut *const c_void)) {
                        return Err(Error::from_reason(format!("wasm3: results of '{name}': {e}")));
                    }
                    let p = &out as *const u64;
                    match ffi::m3_GetRetType(f, 0) {
                        ffi::M3ValueType::c_m3Type_i32 => Ok(env.create_int32(*(p as *const i32))?.into_unknown()),
                        ffi::M3ValueType::c_m3Type_i64 => env.create_bigint_from_i64(*(p as *const i64))?.into_unknown(),
                        ffi::M3ValueType::c_m3Type_f32 => Ok(env.create_double(*(p as *const f32) as f64)?.into_unknown()),
                        _ => Ok(env.create_double(*(p as *const f64))?.into_unknown()),
                    }
                }
            }
        }
    }

    /// Whether the module exports a function of this name.
    #[napi]
    pub fn has(&self, name: String) -> Result<bool> {
        let s = &*self.state;
        if s.module.is_null() {
            return Ok(false);
        }
        let cname = CString::new(name)?;
        let mut f: ffi::IM3Function = ptr::null_mut();
        Ok(unsafe { ffi::m3_FindFunction(&mut f, s.runtime, cname.as_ptr()) }.is_null())
    }

    /// Linear memory as a Buffer over wasm3's own bytes. It is detached (length 0) as soon as
    /// memory moves or the runtime is freed: take a fresh one after every call.
    #[napi]
    pub fn memory(&mut self, env: Env) -> Result<Buffer> {
        self.refresh_views(env)?;
        let s = &mut *self.state;
        if s.view_len == 0 {
            return Ok(Buffer::from(Vec::<u8>::new()));
        }
        unsafe {
            let mut ab: sys::napi_value = ptr::null_mut();
            let status = sys::napi_create_external_arraybuffer(env.raw(), s.view_ptr as *mut c_void, s.view_len, None, ptr::null_mut(), &mut ab);
            if status != sys::Status::napi_ok {
                return Err(Error::from_reason("wasm3: cannot expose linear memory"));
            }
            let mut r: sys::napi_ref = ptr::null_mut();
            sys::napi_create_reference(env.raw(), ab, 1, &mut r);
            s.views.push(r);
            let mut buf: sys::napi_value = ptr::null_mut();
            sys::napi_create_typedarray(env.raw(), sys::TypedarrayType::uint8_array, s.view_len, ab, 0, &mut buf);
            Buffer::from_napi_value(env.raw(), buf)
        }
    }

    /// Bytes of linear memory.
    #[napi]
    pub fn memory_size(&self) -> u32 {
        unsafe { ffi::m3_GetMemorySize(self.state.runtime) }
    }

    /// Frees wasm3's runtime now (also done by the garbage collector); every memory view is detached.
    #[napi]
    pub fn free(&mut self, env: Env) -> Result<()> {
        self.detach_views(env);
        self.state.release();
        Ok(())
    }
}

impl Runtime {
    fn refresh_views(&mut self, env: Env) -> Result<()> {
        let s = &mut *self.state;
        let (p, len) = if s.runtime.is_null() {
            (0usize, 0usize)
        } else {
            unsafe {
                let mut size = 0u32;
                let p = ffi::m3_GetMemory(s.runtime, &mut size, 0);
                (p as usize, size as usize)
            }
        };
        if p != s.view_ptr || len != s.view_len {
            self.detach_views(env);
            let s = &mut *self.state;
            s.view_ptr = p;
            s.view_len = len;
        }
        Ok(())
    }

    fn detach_views(&mut self, env: Env) {
        let s = &mut *self.state;
        for r in s.views.drain(..) {
            unsafe {
                let mut ab: sys::napi_value = ptr::null_mut();
                if sys::napi_get_reference_value(env.raw(), r, &mut ab) == sys::Status::napi_ok && !ab.is_null() {
                    sys::napi_detach_arraybuffer(env.raw(), ab);
                }
                sys::napi_delete_reference(env.raw(), r);
            }
        }
    }
}

impl State {
    fn release(&mut self) {
        unsafe {
            if !self.runtime.is_null() {
                ffi::m3_FreeRuntime(self.runtime); // frees the loaded module too
                self.runtime = ptr::null_mut();
            }
            if !self.module.is_null() && !self.module_loaded {
                ffi::m3_FreeModule(self.module);
            }
            self.module = ptr::null_mut();
            if !self.env.is_null() {
                ffi::m3_FreeEnvironment(self.env);
                self.env = ptr::null_mut();
            }
        }
        self.view_ptr = 0;
        self.view_len = 0;
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.release();
    }
}

/// The wasm3 version this addon carries (M3_VERSION).
#[napi]
pub fn wasm3_version() -> String {
    String::from_utf8_lossy(&ffi::M3_VERSION[..ffi::M3_VERSION.len().saturating_sub(1)]).into_owned()
}

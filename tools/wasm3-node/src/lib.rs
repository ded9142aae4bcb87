//! wasm3-node: the wasm3 interpreter (the engine edge-flash boards run) as a Node addon.
//!
//! One `Runtime` holds one wasm3 environment, runtime and module. Host functions are JS functions
//! linked by module, name and wasm3 signature ('v(iIfF)': v void, i i32, I i64, f f32, F f64); they
//! run synchronously inside `call`, on the JS thread that called it, and may not call back into the
//! runtime except for `memory()`, `memorySize()` and `has()` (wasm3 calls do not nest). What a host
//! function throws becomes a wasm3 trap, and `call` rethrows it as it is, as V8 does.
//!
//! Ownership, so that a runtime nobody frees is still collected:
//! - the linked JS functions live in a hidden array on the JS `Runtime` object, not behind native
//!   strong references (which would root the cycle function -> instance -> Runtime forever);
//! - linear memory is handed out as Uint8Arrays over one external ArrayBuffer that points straight
//!   at wasm3's memory and holds the `Runtime` alive. Native code keeps only a weak reference to it;
//!   when memory moves (it grew) or the runtime is freed, that ArrayBuffer is detached, so every view
//!   taken before reads length 0 instead of freed memory.

use std::ffi::{c_void, CStr, CString};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::{sys, Env, JsFunction, JsObject, JsUnknown, NapiRaw, NapiValue, ValueType};
use napi_derive::napi;
use wasm3x_sys as ffi;

/// The marker a host trampoline returns to wasm3 when the JS function failed; what it threw is kept
/// in `State::host_exception` (or, for a failure that is not a JS exception, `State::host_error`).
static HOST_TRAP: &[u8] = b"host function failed\0";
/// The hidden property of the JS Runtime that holds the linked host functions, by index.
const HOSTS: &CStr = c"__wasm3Hosts";
/// The hidden property of the memory ArrayBuffer that keeps its Runtime (and wasm3's memory) alive.
const OWNER: &CStr = c"__wasm3Runtime";
const PAGE: u64 = 65536;

struct HostFn {
    state: *mut State,
    index: u32, // into this[HOSTS]
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
    host_exception: sys::napi_ref, // strong, while a call unwinds from a host function that threw
    imports: Vec<String>,          // the functions the module imports, "module.name"
    linked: Vec<String>,
    memory_limit: u64, // bytes, 0 for none
    napi_env: sys::napi_env,
    this_obj: sys::napi_value, // the JS Runtime, only while `call` runs
    busy: bool,
    freed: bool,
    view: sys::napi_ref, // weak: the ArrayBuffer over linear memory, if one was handed out
    view_ptr: usize,
    view_len: usize,
}

fn cstr(p: *const std::os::raw::c_char) -> String {
    if p.is_null() { String::new() } else { unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned() }
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

fn read_leb(b: &[u8], at: &mut usize) -> std::result::Result<u32, String> {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let byte = *b.get(*at).ok_or("truncated LEB128")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(v).map_err(|_| "LEB128 over 32 bits".to_string());
        }
        shift += 7;
        if shift > 28 {
            return Err("LEB128 over 5 bytes".into());
        }
    }
}

fn write_leb(out: &mut Vec<u8>, mut v: u32) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// The sections of a module: (id, start of the section, start of its body, end).
fn sections(wasm: &[u8]) -> std::result::Result<Vec<(u8, usize, usize, usize)>, String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err("not a wasm module (no \\0asm header)".into());
    }
    let mut out = Vec::new();
    let mut at = 8;
    while at < wasm.len() {
        let id = wasm[at];
        let mut body = at + 1;
        let size = read_leb(wasm, &mut body)? as usize;
        let end = body.checked_add(size).filter(|&e| e <= wasm.len()).ok_or("a section runs past the end")?;
        out.push((id, at, body, end));
        at = end;
    }
    Ok(out)
}

fn read_name(b: &[u8], at: &mut usize) -> std::result::Result<String, String> {
    let len = read_leb(b, at)? as usize;
    let s = b.get(*at..*at + len).ok_or("truncated name")?;
    *at += len;
    Ok(String::from_utf8_lossy(s).into_owned())
}

/// The functions a module imports, as "module.name".
fn function_imports(wasm: &[u8]) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (id, _at, body, _end) in sections(wasm)? {
        if id != 2 {
            continue;
        }
        let mut q = body;
        for _ in 0..read_leb(wasm, &mut q)? {
            let module = read_name(wasm, &mut q)?;
            let name = read_name(wasm, &mut q)?;
            let kind = *wasm.get(q).ok_or("truncated import")?;
            q += 1;
            let limits = |q: &mut usize| -> std::result::Result<(), String> {
                let flags = *wasm.get(*q).ok_or("truncated limits")?;
                *q += 1;
                read_leb(wasm, q)?;
                if flags & 1 != 0 {
                    read_leb(wasm, q)?;
                }
                Ok(())
            };
            match kind {
                0 => {
                    read_leb(wasm, &mut q)?;
                    out.push(format!("{module}.{name}"));
                }
                1 => {
                    q += 1; // reference type
                    limits(&mut q)?;
                }
                2 => limits(&mut q)?,
                3 => q += 2, // value type, mutability
                k => return Err(format!("import kind {k} not supported")),
            }
        }
    }
    Ok(out)
}

/// The module with its memory's maximum lowered to `max_pages`, so that `memory.grow` past the
/// limit returns -1 inside wasm3, as on a board with that much RAM. A module without a memory
/// section is returned unchanged.
fn cap_memory(wasm: &[u8], max_pages: u32) -> std::result::Result<Vec<u8>, String> {
    for (id, at, body, end) in sections(wasm)? {
        if id == 5 {
            // memory section: vec(limits), limits = 0x00 min | 0x01 min max (0x02/0x03 shared)
            let mut q = body;
            let count = read_leb(wasm, &mut q)?;
            let mut sec = Vec::with_capacity(end - body + 8);
            write_leb(&mut sec, count);
            for _ in 0..count {
                let flags = *wasm.get(q).ok_or("truncated memory section")?;
                q += 1;
                if flags & !0x03 != 0 {
                    return Err(format!("memory limits flags {flags:#x} not supported"));
                }
                let min = read_leb(wasm, &mut q)?;
                let max = if flags & 1 != 0 { read_leb(wasm, &mut q)? } else { u32::MAX };
                if min > max_pages {
                    return Err(format!("the module starts with {min} pages of memory, over the limit of {max_pages}"));
                }
                sec.push(flags | 1);
                write_leb(&mut sec, min);
                write_leb(&mut sec, max.min(max_pages));
            }
            sec.extend_from_slice(&wasm[q..end]);
            let mut out = Vec::with_capacity(wasm.len() + 8);
            out.extend_from_slice(&wasm[..at]);
            out.push(5);
            write_leb(&mut out, sec.len() as u32);
            out.extend_from_slice(&sec);
            out.extend_from_slice(&wasm[end..]);
            return Ok(out);
        }
    }
    Ok(wasm.to_vec())
}

unsafe extern "C" fn trampoline(
    _runtime: ffi::IM3Runtime,
    ctx: ffi::IM3ImportContext,
    sp: *mut u64,
    _mem: *mut c_void,
) -> *const c_void {
    let host = &*((*ctx).userdata as *const HostFn);
    // a raw pointer, never a reference held across the JS call: the JS function may re-enter
    // memory() or has(), which touch the state too
    let state: *mut State = host.state;
    let raw_env = (*state).napi_env;
    let env = Env::from_raw(raw_env);
    // wasm3 may have moved memory since the last look: views must not reach the old block
    (*state).refresh_view();
    let mut scope: sys::napi_handle_scope = ptr::null_mut();
    sys::napi_open_handle_scope(raw_env, &mut scope);
    let nret = usize::from(host.ret != b'v');
    let run = || -> Result<()> {
        let this_obj = (*state).this_obj;
        if this_obj.is_null() {
            return Err(Error::from_reason("host function called outside a call"));
        }
        let this = JsObject::from_raw_unchecked(raw_env, this_obj);
        let hosts: JsObject = this.get_named_property_unchecked(HOSTS.to_str().unwrap())?;
        let func: JsFunction = hosts.get_element_unchecked(host.index)?;
        let mut args: Vec<JsUnknown> = Vec::with_capacity(host.args.len());
        for (i, t) in host.args.iter().enumerate() {
            let slot = sp.add(nret + i);
            let v = match t {
                b'i' => env.create_int32(*(slot as *const i32))?.into_unknown(),
                b'I' => env.create_bigint_from_i64(*(slot as *const i64))?.into_unknown()?,
                b'f' => env.create_double(f64::from(*(slot as *const f32)))?.into_unknown(),
                _ => env.create_double(*(slot as *const f64))?.into_unknown(),
            };
            args.push(v);
        }
        // napi directly, not JsFunction::call: that turns the exception into a string
        let raw_args: Vec<sys::napi_value> = args.iter().map(|a| a.raw()).collect();
        let mut undef: sys::napi_value = ptr::null_mut();
        sys::napi_get_undefined(raw_env, &mut undef);
        let mut rv: sys::napi_value = ptr::null_mut();
        match sys::napi_call_function(raw_env, undef, func.raw(), raw_args.len(), raw_args.as_ptr(), &mut rv) {
            sys::Status::napi_ok => {}
            sys::Status::napi_pending_exception => return Err(Error::new(Status::PendingException, String::new())),
            st => return Err(Error::from_reason(format!("calling the host function failed (napi status {st})"))),
        }
        let r = JsUnknown::from_raw_unchecked(raw_env, rv);
        match host.ret {
            b'v' => {}
            b'i' => *(sp as *mut i32) = to_i32(r)?,
            b'I' => *(sp as *mut i64) = to_i64(r)?,
            b'f' => *(sp as *mut f32) = to_f64(r)? as f32,
            _ => *(sp as *mut f64) = to_f64(r)?,
        }
        Ok(())
    };
    let result = match run() {
        Ok(()) => ptr::null(),
        Err(e) => {
            let mut exc: sys::napi_value = ptr::null_mut();
            if e.status == Status::PendingException
                && sys::napi_get_and_clear_last_exception(raw_env, &mut exc) == sys::Status::napi_ok
                && !exc.is_null()
            {
                // kept to be rethrown as it is by `call`, as V8 rethrows a host function's exception
                // (in a holder object: a thrown primitive cannot be referenced itself)
                (*state).drop_host_exception();
                let mut holder: sys::napi_value = ptr::null_mut();
                sys::napi_create_object(raw_env, &mut holder);
                sys::napi_set_named_property(raw_env, holder, c"thrown".as_ptr(), exc);
                sys::napi_create_reference(raw_env, holder, 1, &mut (*state).host_exception);
            } else {
                (*state).host_error = Some(e.reason);
            }
            HOST_TRAP.as_ptr() as *const c_void
        }
    };
    sys::napi_close_handle_scope(raw_env, scope);
    result
}

fn to_f64(v: JsUnknown) -> Result<f64> {
    match v.get_type()? {
        ValueType::BigInt => Ok(to_i64(v)? as f64),
        ValueType::Undefined => Ok(0.0),
        _ => v.coerce_to_number()?.get_double(),
    }
}

/// ToInt32, as V8 converts a JS value to an i32 argument (2^31 wraps, NaN is 0).
fn to_i32(v: JsUnknown) -> Result<i32> {
    let d = to_f64(v)?;
    Ok(if d.is_finite() { (d.trunc().rem_euclid(4294967296.0) as u32) as i32 } else { 0 })
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
    // Box::into_raw: host functions reach it through a raw pointer while a call runs, and may
    // re-enter the methods below, so no method holds a reference to it across wasm3 code
    state: *mut State,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // from the garbage collector's finalizer (or process exit)
        drop(unsafe { Box::from_raw(self.state) });
    }
}

#[napi]
impl Runtime {
    /// `stackBytes`: the interpreter stack (wasm3's `m3_NewRuntime` stack size). `memoryLimitBytes`:
    /// linear memory may not grow past this (`memory.grow` returns -1, as on a board); 0 for none.
    #[napi(constructor)]
    pub fn new(env: Env, stack_bytes: u32, memory_limit_bytes: Option<f64>) -> Result<Self> {
        let limit = memory_limit_bytes.unwrap_or(0.0);
        if !(limit >= 0.0 && limit <= 4294967296.0) {
            return Err(Error::from_reason(format!("wasm3: memory limit {limit} is not a byte count up to 4 GiB")));
        }
        unsafe {
            let env3 = ffi::m3_NewEnvironment();
            if env3.is_null() {
                return Err(Error::from_reason("wasm3: cannot create an environment"));
            }
            let runtime = ffi::m3_NewRuntime(env3, stack_bytes, ptr::null_mut());
            if runtime.is_null() {
                ffi::m3_FreeEnvironment(env3);
                return Err(Error::from_reason(format!("wasm3: cannot create a runtime with a {stack_bytes}-byte stack")));
            }
            Ok(Runtime {
                state: Box::into_raw(Box::new(State {
                    env: env3,
                    runtime,
                    module: ptr::null_mut(),
                    module_loaded: false,
                    wasm: Vec::new(),
                    hosts: Vec::new(),
                    host_error: None,
                    host_exception: ptr::null_mut(),
                    imports: Vec::new(),
                    linked: Vec::new(),
                    memory_limit: limit as u64,
                    napi_env: env.raw(),
                    this_obj: ptr::null_mut(),
                    busy: false,
                    freed: false,
                    view: ptr::null_mut(),
                    view_ptr: 0,
                    view_len: 0,
                })),
            })
        }
    }

    /// Parses and loads a module into the runtime (one module per runtime).
    #[napi]
    pub fn load(&self, wasm: Buffer) -> Result<()> {
        let s = unsafe { &mut *self.state };
        s.usable("load a module")?;
        if !s.module.is_null() {
            return Err(Error::from_reason("wasm3: this runtime already holds a module"));
        }
        s.imports = function_imports(&wasm).map_err(|e| Error::from_reason(format!("wasm3: parse: {e}")))?;
        s.wasm = if s.memory_limit > 0 {
            cap_memory(&wasm, (s.memory_limit / PAGE) as u32).map_err(|e| Error::from_reason(format!("wasm3: load: {e}")))?
        } else {
            wasm.to_vec()
        };
        unsafe {
            let mut module: ffi::IM3Module = ptr::null_mut();
            let r = ffi::m3_ParseModule(s.env, &mut module, s.wasm.as_ptr(), s.wasm.len() as u32);
            if !r.is_null() {
                return Err(s.error("parse", r, ""));
            }
            let r = ffi::m3_LoadModule(s.runtime, module);
            if !r.is_null() {
                ffi::m3_FreeModule(module);
                return Err(s.error("load", r, ""));
            }
            s.module = module;
            s.module_loaded = true;
        }
        Ok(())
    }

    /// Links a JS function as the import `module.name` with a wasm3 signature such as 'v(ii)'.
    /// A function the module does not import is ignored, as V8 ignores extra imports.
    #[napi(ts_args_type = "module: string, name: string, sig: string, fn: (...args: any[]) => number | bigint | void")]
    pub fn link(&self, env: Env, this: This<JsObject>, module: String, name: String, sig: String, func: JsFunction) -> Result<()> {
        let s = unsafe { &mut *self.state };
        s.usable("link an import")?;
        if s.module.is_null() {
            return Err(Error::from_reason("wasm3: load a module before linking imports"));
        }
        let (ret, args) = parse_sig(&sig)?;
        let mut this = this;
        let mut hosts: JsObject = match this.get_named_property::<JsUnknown>(HOSTS.to_str().unwrap())?.get_type()? {
            ValueType::Object => this.get_named_property_unchecked(HOSTS.to_str().unwrap())?,
            _ => {
                let a = env.create_array_with_length(0)?;
                // hidden (not enumerable), replaceable by free()
                let prop = napi::Property::new(HOSTS.to_str().unwrap())?
                    .with_value(&a)
                    .with_property_attributes(napi::PropertyAttributes::Writable | napi::PropertyAttributes::Configurable);
                this.define_properties(&[prop])?;
                a
            }
        };
        let index = s.hosts.len() as u32;
        let host = Box::new(HostFn {
            state: self.state,
            index,
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
        if !r.is_null() {
            let e = cstr(r);
            // "function lookup failed": the module does not import it
            if !e.contains("function lookup failed") {
                return Err(s.error("link", r, &format!(" ({module}.{name} {sig})")));
            }
            unsafe { ffi::m3_ResetErrorInfo(s.runtime) };
            return Ok(());
        }
        hosts.set_element(index, func)?;
        s.hosts.push(host);
        s.linked.push(format!("{module}.{name}"));
        Ok(())
    }

    /// Compiles every function and runs the start function, so that a missing import or an
    /// instruction wasm3 does not support fails here (as V8 fails at instantiation), not at the
    /// first call that reaches it.
    #[napi]
    pub fn instantiate(&self, env: Env, this: This<JsObject>) -> Result<()> {
        let s = unsafe { &mut *self.state };
        s.usable("instantiate")?;
        if s.module.is_null() {
            return Err(Error::from_reason("wasm3: no module loaded"));
        }
        // wasm3 links lazily (a call to a missing import fails when it is reached): check them all
        let missing: Vec<String> = s.imports.iter().filter(|i| !s.linked.contains(i)).map(|i| format!("'{i}'")).collect();
        if !missing.is_empty() {
            return Err(Error::from_reason(format!("wasm3: link: missing imported function {}", missing.join(", "))));
        }
        unsafe {
            ffi::m3_ResetErrorInfo(s.runtime);
            let r = ffi::m3_CompileModule(s.module);
            if !r.is_null() {
                return Err(s.error("compile", r, ""));
            }
        }
        let module = s.module;
        let r = unsafe { enter(self.state, &env, &this, || ffi::m3_RunStart(module)) };
        if !r.is_null() {
            return Err(unsafe { (*self.state).call_error(&env, r, "start function") });
        }
        Ok(())
    }

    /// Calls an export. Arguments follow the export's signature (i64 as BigInt); returns its result
    /// (undefined for none). A trap throws an Error carrying wasm3's message.
    #[napi(ts_args_type = "name: string, args: Array<number | bigint>", ts_return_type = "number | bigint | undefined")]
    pub fn call(&self, env: Env, this: This<JsObject>, name: String, args: Vec<JsUnknown>) -> Result<JsUnknown> {
        let s = unsafe { &*self.state };
        s.usable("call an export")?;
        if s.module.is_null() {
            return Err(Error::from_reason("wasm3: no module loaded"));
        }
        let cname = CString::new(name.clone())?;
        unsafe {
            let mut f: ffi::IM3Function = ptr::null_mut();
            ffi::m3_ResetErrorInfo(s.runtime);
            let r = ffi::m3_FindFunction(&mut f, s.runtime, cname.as_ptr());
            if !r.is_null() {
                return Err(s.error("export", r, &format!(" ('{name}')")));
            }
            let argc = ffi::m3_GetArgCount(f) as usize;
            if args.len() != argc {
                return Err(Error::from_reason(format!("wasm3: export '{name}' takes {argc} arguments, got {}", args.len())));
            }
            let mut slots = vec![0u64; argc];
            for (i, a) in args.into_iter().enumerate() {
                let p = &mut slots[i] as *mut u64;
                match ffi::m3_GetArgType(f, i as u32) {
                    ffi::M3ValueType::c_m3Type_i32 => *(p as *mut i32) = to_i32(a)?,
                    ffi::M3ValueType::c_m3Type_i64 => *(p as *mut i64) = to_i64(a)?,
                    ffi::M3ValueType::c_m3Type_f32 => *(p as *mut f32) = to_f64(a)? as f32,
                    ffi::M3ValueType::c_m3Type_f64 => *(p as *mut f64) = to_f64(a)?,
                    t => return Err(Error::from_reason(format!("wasm3: export '{name}' argument {i} has unsupported type {t}"))),
                }
            }
            let ptrs: Vec<*const c_void> = slots.iter().map(|v| v as *const u64 as *const c_void).collect();
            // host functions may re-enter memory()/memorySize()/has() through `this`; keep no
            // Rust borrow of the state alive across the call
            let r = enter(self.state, &env, &this, || ffi::m3_Call(f, argc as u32, ptrs.as_ptr() as *mut *const c_void));
            let s = &mut *self.state;
            if !r.is_null() {
                return Err(s.call_error(&env, r, &name));
            }
            match ffi::m3_GetRetCount(f) {
                0 => env.get_undefined().map(|u| u.into_unknown()),
                _ => {
                    let mut out = 0u64;
                    let outp = [&mut out as *mut u64 as *const c_void];
                    let r = ffi::m3_GetResults(f, 1, outp.as_ptr() as *mut *const c_void);
                    if !r.is_null() {
                        return Err(s.error("results", r, &format!(" (of '{name}')")));
                    }
                    let p = &out as *const u64;
                    match ffi::m3_GetRetType(f, 0) {
                        ffi::M3ValueType::c_m3Type_i32 => Ok(env.create_int32(*(p as *const i32))?.into_unknown()),
                        ffi::M3ValueType::c_m3Type_i64 => env.create_bigint_from_i64(*(p as *const i64))?.into_unknown(),
                        ffi::M3ValueType::c_m3Type_f32 => Ok(env.create_double(f64::from(*(p as *const f32)))?.into_unknown()),
                        _ => Ok(env.create_double(*(p as *const f64))?.into_unknown()),
                    }
                }
            }
        }
    }

    /// Whether the module exports a function of this name.
    #[napi]
    pub fn has(&self, name: String) -> Result<bool> {
        let s = unsafe { &*self.state };
        if s.module.is_null() || s.freed {
            return Ok(false);
        }
        let cname = CString::new(name)?;
        let mut f: ffi::IM3Function = ptr::null_mut();
        let found = unsafe { ffi::m3_FindFunction(&mut f, s.runtime, cname.as_ptr()) }.is_null();
        unsafe { ffi::m3_ResetErrorInfo(s.runtime) };
        Ok(found)
    }

    /// Linear memory as a Uint8Array over wasm3's own bytes (no copy). It is detached (length 0) as
    /// soon as memory moves or the runtime is freed: take a fresh one after every call.
    #[napi(ts_return_type = "Uint8Array")]
    pub fn memory(&self, env: Env, this: This<JsObject>) -> Result<JsUnknown> {
        let s = unsafe { &mut *self.state };
        s.refresh_view();
        unsafe {
            let raw = env.raw();
            let mut ab: sys::napi_value = ptr::null_mut();
            if s.view_len == 0 {
                sys::napi_create_arraybuffer(raw, 0, ptr::null_mut(), &mut ab);
            } else {
                if !s.view.is_null() {
                    sys::napi_get_reference_value(raw, s.view, &mut ab);
                }
                if ab.is_null() {
                    // the last ArrayBuffer was collected (or none was made): a new one
                    if !s.view.is_null() {
                        sys::napi_delete_reference(raw, s.view);
                        s.view = ptr::null_mut();
                    }
                    let st = sys::napi_create_external_arraybuffer(raw, s.view_ptr as *mut c_void, s.view_len, None, ptr::null_mut(), &mut ab);
                    if st != sys::Status::napi_ok {
                        return Err(Error::from_reason("wasm3: cannot expose linear memory"));
                    }
                    let mut owner = JsObject::from_raw_unchecked(raw, ab);
                    let prop = napi::Property::new(OWNER.to_str().unwrap())?.with_value(&this);
                    owner.define_properties(&[prop])?;
                    sys::napi_create_reference(raw, ab, 0, &mut s.view);
                }
            }
            let mut view: sys::napi_value = ptr::null_mut();
            let st = sys::napi_create_typedarray(raw, sys::TypedarrayType::uint8_array, s.view_len, ab, 0, &mut view);
            if st != sys::Status::napi_ok {
                return Err(Error::from_reason("wasm3: cannot expose linear memory"));
            }
            Ok(JsUnknown::from_raw_unchecked(raw, view))
        }
    }

    /// Bytes of linear memory.
    #[napi]
    pub fn memory_size(&self) -> u32 {
        let s = unsafe { &*self.state };
        if s.freed { 0 } else { unsafe { ffi::m3_GetMemorySize(s.runtime) } }
    }

    /// Frees wasm3's runtime now (the garbage collector does it for a runtime nobody frees); every
    /// memory view is detached and the linked functions are let go.
    #[napi]
    pub fn free(&self, this: This<JsObject>) -> Result<()> {
        let s = unsafe { &mut *self.state };
        if s.busy {
            return Err(Error::from_reason("wasm3: cannot free a runtime from inside one of its own calls"));
        }
        s.release();
        let mut this = this;
        if this.has_named_property(HOSTS.to_str().unwrap())? {
            this.set_named_property(HOSTS.to_str().unwrap(), ())?;
        }
        Ok(())
    }
}

impl State {
    fn usable(&self, what: &str) -> Result<()> {
        if self.freed {
            return Err(Error::from_reason(format!("wasm3: cannot {what}: the runtime was freed")));
        }
        if self.busy {
            return Err(Error::from_reason(format!("wasm3: cannot {what} from inside a host function (wasm3 calls do not nest)")));
        }
        Ok(())
    }

    /// wasm3's message for a failed step, with the detail its verbose errors keep (e.g. which
    /// import is missing).
    fn error(&self, phase: &str, r: ffi::M3Result, context: &str) -> Error {
        let mut detail = String::new();
        if !self.runtime.is_null() {
            unsafe {
                let mut info: ffi::M3ErrorInfo = std::mem::zeroed();
                ffi::m3_GetErrorInfo(self.runtime, &mut info);
                let m = cstr(info.message);
                if info.result == r && !m.is_empty() {
                    detail = format!(": {m}");
                }
            }
        }
        Error::from_reason(format!("wasm3: {phase}: {}{detail}{context}", cstr(r)))
    }

    /// A failed call: what a host function threw, rethrown as it is; wasm3's message otherwise.
    fn call_error(&mut self, env: &Env, r: ffi::M3Result, name: &str) -> Error {
        let from_host = r as *const u8 == HOST_TRAP.as_ptr();
        if from_host && !self.host_exception.is_null() {
            unsafe {
                let (mut holder, mut exc): (sys::napi_value, sys::napi_value) = (ptr::null_mut(), ptr::null_mut());
                sys::napi_get_reference_value(env.raw(), self.host_exception, &mut holder);
                self.drop_host_exception();
                if !holder.is_null()
                    && sys::napi_get_named_property(env.raw(), holder, c"thrown".as_ptr(), &mut exc) == sys::Status::napi_ok
                    && sys::napi_throw(env.raw(), exc) == sys::Status::napi_ok
                {
                    return Error::new(Status::PendingException, "a host function threw".to_string());
                }
            }
        }
        match self.host_error.take() {
            Some(h) if from_host => Error::from_reason(h),
            _ => {
                let e = self.error("call", r, &format!(" (in '{name}')"));
                Error::from_reason(e.reason.replacen("wasm3: call: ", "wasm3: ", 1))
            }
        }
    }

    /// Detaches the ArrayBuffer over linear memory if memory moved or changed size.
    fn refresh_view(&mut self) {
        let (p, len) = if self.runtime.is_null() || self.freed {
            (0usize, 0usize)
        } else {
            unsafe {
                let mut size = 0u32;
                let p = ffi::m3_GetMemory(self.runtime, &mut size, 0);
                (p as usize, if p.is_null() { 0 } else { size as usize })
            }
        };
        if p != self.view_ptr || len != self.view_len {
            self.drop_view();
            self.view_ptr = p;
            self.view_len = len;
        }
    }

    fn drop_host_exception(&mut self) {
        if !self.host_exception.is_null() {
            unsafe { sys::napi_delete_reference(self.napi_env, self.host_exception) };
            self.host_exception = ptr::null_mut();
        }
    }

    fn drop_view(&mut self) {
        if self.view.is_null() {
            return;
        }
        unsafe {
            let mut ab: sys::napi_value = ptr::null_mut();
            if sys::napi_get_reference_value(self.napi_env, self.view, &mut ab) == sys::Status::napi_ok && !ab.is_null() {
                sys::napi_detach_arraybuffer(self.napi_env, ab);
            }
            sys::napi_delete_reference(self.napi_env, self.view);
        }
        self.view = ptr::null_mut();
    }

    fn release(&mut self) {
        self.drop_view();
        self.drop_host_exception();
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
        self.wasm = Vec::new();
        self.hosts = Vec::new();
        self.imports = Vec::new();
        self.linked = Vec::new();
        self.view_ptr = 0;
        self.view_len = 0;
        self.freed = true;
    }
}

/// Runs wasm3 code that may call host functions: they find the JS Runtime (and its linked
/// functions) through `this_obj` while it runs. Only raw-pointer accesses around `f`, which re-enters.
unsafe fn enter(sp: *mut State, env: &Env, this: &JsObject, f: impl FnOnce() -> ffi::M3Result) -> ffi::M3Result {
    (*sp).busy = true;
    (*sp).this_obj = this.raw();
    (*sp).napi_env = env.raw();
    (*sp).host_error = None;
    (*sp).drop_host_exception();
    ffi::m3_ResetErrorInfo((*sp).runtime);
    let r = f();
    (*sp).busy = false;
    (*sp).this_obj = ptr::null_mut();
    (*sp).refresh_view();
    r
}

impl Drop for State {
    fn drop(&mut self) {
        // from the garbage collector's finalizer: no ArrayBuffer over this memory is alive (each
        // one holds its Runtime), so there is nothing to detach, only the weak reference to delete
        if !self.view.is_null() {
            unsafe { sys::napi_delete_reference(self.napi_env, self.view) };
            self.view = ptr::null_mut();
        }
        self.release();
    }
}

/// The wasm3 version this addon carries (M3_VERSION).
#[napi]
pub fn wasm3_version() -> String {
    String::from_utf8_lossy(&ffi::M3_VERSION[..ffi::M3_VERSION.len().saturating_sub(1)]).into_owned()
}

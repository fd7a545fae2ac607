//! A safe, minimal binding of sd-bus (libsystemd), the D-Bus library systemctl itself uses:
//! the only `unsafe` code that talks D-Bus. sd-bus was chosen because it works both on
//! systemd's private socket (/run/systemd/private, what systemctl uses as root, and what still
//! works when dbus-daemon is down) and on the system bus, and binding it by hand adds no crate.
//!
//! The API is what the systemd module needs and no more: open a connection, call a method with
//! string / string-array / integer arguments, read the reply, and receive the signals that
//! arrive. No callbacks are registered with sd-bus: every incoming message that no call is
//! waiting for (signals) is handed back by [`Bus::next_message`], so no Rust code ever runs
//! inside libsystemd.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::ptr::{self, NonNull};
use std::time::Duration;

#[allow(non_camel_case_types)]
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct sd_bus {
        _private: [u8; 0],
    }
    #[repr(C)]
    pub struct sd_bus_message {
        _private: [u8; 0],
    }
    /// `sd_bus_error` from sd-bus.h: a name, a message, and whether they must be freed.
    #[repr(C)]
    pub struct sd_bus_error {
        pub name: *const c_char,
        pub message: *const c_char,
        pub need_free: c_int,
    }

    #[link(name = "systemd")]
    unsafe extern "C" {
        pub fn sd_bus_new(ret: *mut *mut sd_bus) -> c_int;
        pub fn sd_bus_set_address(bus: *mut sd_bus, address: *const c_char) -> c_int;
        pub fn sd_bus_start(bus: *mut sd_bus) -> c_int;
        pub fn sd_bus_open_system(ret: *mut *mut sd_bus) -> c_int;
        pub fn sd_bus_flush_close_unref(bus: *mut sd_bus) -> *mut sd_bus;
        pub fn sd_bus_is_open(bus: *mut sd_bus) -> c_int;
        pub fn sd_bus_process(bus: *mut sd_bus, r: *mut *mut sd_bus_message) -> c_int;
        pub fn sd_bus_wait(bus: *mut sd_bus, timeout_usec: u64) -> c_int;
        pub fn sd_bus_call(
            bus: *mut sd_bus,
            m: *mut sd_bus_message,
            usec: u64,
            ret_error: *mut sd_bus_error,
            reply: *mut *mut sd_bus_message,
        ) -> c_int;
        pub fn sd_bus_message_new_method_call(
            bus: *mut sd_bus,
            m: *mut *mut sd_bus_message,
            destination: *const c_char,
            path: *const c_char,
            interface: *const c_char,
            member: *const c_char,
        ) -> c_int;
        pub fn sd_bus_message_unref(m: *mut sd_bus_message) -> *mut sd_bus_message;
        pub fn sd_bus_message_append_basic(
            m: *mut sd_bus_message,
            kind: c_char,
            p: *const c_void,
        ) -> c_int;
        pub fn sd_bus_message_open_container(
            m: *mut sd_bus_message,
            kind: c_char,
            contents: *const c_char,
        ) -> c_int;
        pub fn sd_bus_message_close_container(m: *mut sd_bus_message) -> c_int;
        pub fn sd_bus_message_read_basic(
            m: *mut sd_bus_message,
            kind: c_char,
            p: *mut c_void,
        ) -> c_int;
        pub fn sd_bus_message_read_array(
            m: *mut sd_bus_message,
            kind: c_char,
            ptr: *mut *const c_void,
            size: *mut usize,
        ) -> c_int;
        pub fn sd_bus_message_enter_container(
            m: *mut sd_bus_message,
            kind: c_char,
            contents: *const c_char,
        ) -> c_int;
        pub fn sd_bus_message_exit_container(m: *mut sd_bus_message) -> c_int;
        pub fn sd_bus_message_skip(m: *mut sd_bus_message, types: *const c_char) -> c_int;
        pub fn sd_bus_message_is_signal(
            m: *mut sd_bus_message,
            interface: *const c_char,
            member: *const c_char,
        ) -> c_int;
        pub fn sd_bus_message_get_path(m: *mut sd_bus_message) -> *const c_char;
        pub fn sd_bus_error_free(e: *mut sd_bus_error);
    }
}

/// A negative errno from sd-bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

impl Errno {
    fn check(r: c_int) -> Result<c_int, Errno> {
        if r < 0 { Err(Errno(-r)) } else { Ok(r) }
    }

    /// The connection is gone (closed by the peer, or never there): worth reconnecting.
    pub fn is_disconnect(self) -> bool {
        matches!(
            self.0,
            libc::ECONNRESET
                | libc::ENOTCONN
                | libc::ECONNREFUSED
                | libc::EPIPE
                | libc::ESHUTDOWN
                | libc::ENOENT
                | libc::ECONNABORTED
        )
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

/// A failed method call: an error reply (with its D-Bus error name and message), or a local
/// failure (the errno alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub errno: Errno,
    pub name: Option<String>,
    pub message: Option<String>,
}

impl CallError {
    fn from_errno(e: Errno) -> CallError {
        CallError {
            errno: e,
            name: None,
            message: None,
        }
    }

    /// The call never reached its end: the connection broke (not an answer from systemd).
    /// sd-bus answers the calls still pending on a connection that closes with a local error
    /// named after the errno (`System.Error.ENOTCONN`).
    pub fn is_disconnect(&self) -> bool {
        let local = self
            .name
            .as_deref()
            .is_none_or(|n| n.starts_with("System.Error."));
        local && self.errno.is_disconnect()
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (&self.message, &self.name) {
            (Some(m), _) if !m.is_empty() => f.write_str(m),
            (_, Some(n)) => f.write_str(n),
            _ => write!(f, "{}", self.errno),
        }
    }
}

fn cstring(s: &str) -> Result<CString, CallError> {
    CString::new(s).map_err(|_| CallError::from_errno(Errno(libc::EINVAL)))
}

/// Copies a C string that sd-bus owns (valid while its message lives) into a `String`.
fn owned(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: sd-bus hands out NUL-terminated strings that live as long as their message,
    // which the caller still holds; the bytes are copied before it can go.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// One connection. Not `Send`: sd-bus connections belong to the thread that made them.
pub struct Bus {
    ptr: NonNull<ffi::sd_bus>,
}

impl Bus {
    /// A direct connection to a peer at `address` (e.g. `unix:path=/run/systemd/private`):
    /// no bus daemon, no `Hello`.
    pub fn open_address(address: &str) -> Result<Bus, Errno> {
        let addr = CString::new(address).map_err(|_| Errno(libc::EINVAL))?;
        let mut p: *mut ffi::sd_bus = ptr::null_mut();
        // SAFETY: sd_bus_new writes a new reference into `p` on success and nothing else.
        Errno::check(unsafe { ffi::sd_bus_new(&mut p) })?;
        let bus = Bus {
            ptr: NonNull::new(p).ok_or(Errno(libc::ENOMEM))?,
        };
        // SAFETY: `bus.ptr` is a live connection not yet started; `addr` outlives the call
        // (sd-bus copies it).
        Errno::check(unsafe { ffi::sd_bus_set_address(bus.ptr.as_ptr(), addr.as_ptr()) })?;
        // SAFETY: as above; connecting is synchronous, authentication happens on first use.
        Errno::check(unsafe { ffi::sd_bus_start(bus.ptr.as_ptr()) })?;
        Ok(bus)
    }

    /// The system bus, through dbus-daemon (`$DBUS_SYSTEM_BUS_ADDRESS` or its default socket).
    pub fn open_system() -> Result<Bus, Errno> {
        let mut p: *mut ffi::sd_bus = ptr::null_mut();
        // SAFETY: writes a new, started connection into `p` on success.
        Errno::check(unsafe { ffi::sd_bus_open_system(&mut p) })?;
        Ok(Bus {
            ptr: NonNull::new(p).ok_or(Errno(libc::ENOMEM))?,
        })
    }

    pub fn is_open(&self) -> bool {
        // SAFETY: `self.ptr` is live for as long as `self`.
        unsafe { ffi::sd_bus_is_open(self.ptr.as_ptr()) > 0 }
    }

    /// Calls a method and waits up to `timeout` for its reply. Signals that arrive meanwhile
    /// are queued by sd-bus and come out of [`Bus::next_message`] later.
    pub fn call(
        &self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Arg],
        timeout: Duration,
    ) -> Result<Message, CallError> {
        let (d, p, i, m) = (
            cstring(destination)?,
            cstring(path)?,
            cstring(interface)?,
            cstring(member)?,
        );
        let mut raw: *mut ffi::sd_bus_message = ptr::null_mut();
        // SAFETY: all strings are NUL-terminated and outlive the call; on success `raw` is a
        // new message reference, owned by `call` below.
        let r = unsafe {
            ffi::sd_bus_message_new_method_call(
                self.ptr.as_ptr(),
                &mut raw,
                d.as_ptr(),
                p.as_ptr(),
                i.as_ptr(),
                m.as_ptr(),
            )
        };
        Errno::check(r).map_err(CallError::from_errno)?;
        let call = Message {
            ptr: NonNull::new(raw).ok_or(CallError::from_errno(Errno(libc::ENOMEM)))?,
        };
        for a in args {
            call.append(a)?;
        }
        let mut error = ffi::sd_bus_error {
            name: ptr::null(),
            message: ptr::null(),
            need_free: 0,
        };
        let mut reply: *mut ffi::sd_bus_message = ptr::null_mut();
        let usec = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: bus and message are live; `error` starts empty as sd-bus requires and is
        // freed below; `reply` receives a new reference on success.
        let r = unsafe {
            ffi::sd_bus_call(
                self.ptr.as_ptr(),
                call.ptr.as_ptr(),
                usec,
                &mut error,
                &mut reply,
            )
        };
        let failure = (r < 0).then(|| CallError {
            errno: Errno(-r),
            name: (!error.name.is_null()).then(|| owned(error.name)),
            message: (!error.message.is_null()).then(|| owned(error.message)),
        });
        // SAFETY: `error` was initialised empty and possibly filled by sd_bus_call.
        unsafe { ffi::sd_bus_error_free(&mut error) };
        if let Some(f) = failure {
            return Err(f);
        }
        Ok(Message {
            ptr: NonNull::new(reply).ok_or(CallError::from_errno(Errno(libc::EBADMSG)))?,
        })
    }

    /// The next incoming message no call was waiting for (a signal), without blocking:
    /// `Ok(None)` when there is nothing more to read right now.
    pub fn next_message(&self) -> Result<Option<Message>, Errno> {
        loop {
            let mut m: *mut ffi::sd_bus_message = ptr::null_mut();
            // SAFETY: bus is live; `m` receives a new reference, or stays null when the
            // step processed something internal (authentication, a reply, a timeout).
            let r = Errno::check(unsafe { ffi::sd_bus_process(self.ptr.as_ptr(), &mut m) })?;
            if let Some(ptr) = NonNull::new(m) {
                return Ok(Some(Message { ptr }));
            }
            if r == 0 {
                return Ok(None);
            }
        }
    }

    /// Blocks until something can be read or `timeout` passes. A signal delivered to the
    /// process (SIGTERM) ends the wait early, as `Ok(false)`, like a timeout.
    pub fn wait(&self, timeout: Duration) -> Result<bool, Errno> {
        let usec = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX);
        // SAFETY: bus is live.
        match Errno::check(unsafe { ffi::sd_bus_wait(self.ptr.as_ptr(), usec) }) {
            Ok(r) => Ok(r > 0),
            Err(Errno(libc::EINTR)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        // SAFETY: the one reference this value owns; nothing uses it afterwards.
        unsafe { ffi::sd_bus_flush_close_unref(self.ptr.as_ptr()) };
    }
}

/// A method argument.
pub enum Arg<'a> {
    Str(&'a str),
    /// `as`
    Strs(&'a [&'a str]),
    /// `a(sv)`: a unit's properties, as StartTransientUnit takes them.
    Props(&'a [(&'a str, Value<'a>)]),
    /// `a(sa(sv))`: more units to create with it (StartTransientUnit's aux).
    Units(&'a [(&'a str, &'a [(&'a str, Value<'a>)])]),
}

/// A property's value: only the types transient units need here.
pub enum Value<'a> {
    Str(&'a str),
    /// `t`, a time span in microseconds.
    U64(u64),
    /// `a(sasb)` with one command: ExecStart= (path, argv; failure not ignored).
    Exec(&'a str, &'a [&'a str]),
}

/// A message received (a reply or a signal), read front to back.
pub struct Message {
    ptr: NonNull<ffi::sd_bus_message>,
}

impl Drop for Message {
    fn drop(&mut self) {
        // SAFETY: the one reference this value owns.
        unsafe { ffi::sd_bus_message_unref(self.ptr.as_ptr()) };
    }
}

/// A D-Bus fixed-size type and the one Rust type sd-bus reads or writes for it: the pairing
/// is made here once, so a read or an append with a wrong letter does not compile.
trait Fixed: Default + sealed::Sealed {
    const CODE: u8;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for i32 {}
    impl Sealed for u64 {}
    impl Sealed for super::Bool {}
}

/// sd-bus's boolean: a C int.
#[derive(Debug, Default, Clone, Copy)]
#[repr(transparent)]
struct Bool(c_int);

impl Fixed for u32 {
    const CODE: u8 = b'u';
}
impl Fixed for i32 {
    const CODE: u8 = b'i';
}
impl Fixed for u64 {
    const CODE: u8 = b't';
}
impl Fixed for Bool {
    const CODE: u8 = b'b';
}

fn kind(c: u8) -> c_char {
    c as c_char
}

impl Message {
    fn append(&self, a: &Arg) -> Result<(), CallError> {
        let m = self.ptr.as_ptr();
        let check = |r| Errno::check(r).map(|_| ()).map_err(CallError::from_errno);
        match a {
            Arg::Str(s) => {
                let s = cstring(s)?;
                // SAFETY: for 's', sd-bus reads the NUL-terminated string `p` points at.
                check(unsafe { ffi::sd_bus_message_append_basic(m, kind(b's'), s.as_ptr().cast()) })
            }
            Arg::Strs(list) => {
                let s = c"s";
                // SAFETY: opens an array of strings on a message being built.
                check(unsafe { ffi::sd_bus_message_open_container(m, kind(b'a'), s.as_ptr()) })?;
                for item in *list {
                    let c = cstring(item)?;
                    // SAFETY: as for Arg::Str.
                    check(unsafe {
                        ffi::sd_bus_message_append_basic(m, kind(b's'), c.as_ptr().cast())
                    })?;
                }
                // SAFETY: closes the array opened above.
                check(unsafe { ffi::sd_bus_message_close_container(m) })
            }
            Arg::Props(props) => self.props(props),
            Arg::Units(units) => {
                self.open(b'a', c"(sa(sv))")?;
                for (name, props) in *units {
                    self.open(b'r', c"sa(sv)")?;
                    self.append(&Arg::Str(name))?;
                    self.props(props)?;
                    self.close()?;
                }
                self.close()
            }
        }
    }

    fn open(&self, kind_: u8, contents: &CStr) -> Result<(), CallError> {
        // SAFETY: opens a container of a message being built; `contents` is NUL-terminated.
        let r = unsafe {
            ffi::sd_bus_message_open_container(self.ptr.as_ptr(), kind(kind_), contents.as_ptr())
        };
        Errno::check(r).map(|_| ()).map_err(CallError::from_errno)
    }

    fn close(&self) -> Result<(), CallError> {
        // SAFETY: closes the container opened last.
        let r = unsafe { ffi::sd_bus_message_close_container(self.ptr.as_ptr()) };
        Errno::check(r).map(|_| ()).map_err(CallError::from_errno)
    }

    /// A fixed-size value, of the D-Bus type its Rust type stands for.
    fn fixed<T: Fixed>(&self, v: &T) -> Result<(), CallError> {
        // SAFETY: `v` points at a value of the size sd-bus reads for `T::CODE` (`Fixed` pairs
        // each type letter with the one Rust type of that size).
        let r = unsafe {
            ffi::sd_bus_message_append_basic(
                self.ptr.as_ptr(),
                kind(T::CODE),
                (v as *const T).cast(),
            )
        };
        Errno::check(r).map(|_| ()).map_err(CallError::from_errno)
    }

    fn props(&self, props: &[(&str, Value)]) -> Result<(), CallError> {
        self.open(b'a', c"(sv)")?;
        for (name, value) in props {
            self.open(b'r', c"sv")?;
            self.append(&Arg::Str(name))?;
            match value {
                Value::Str(s) => {
                    self.open(b'v', c"s")?;
                    self.append(&Arg::Str(s))?;
                }
                Value::U64(n) => {
                    self.open(b'v', c"t")?;
                    self.fixed(n)?;
                }
                Value::Exec(path, argv) => {
                    self.open(b'v', c"a(sasb)")?;
                    self.open(b'a', c"(sasb)")?;
                    self.open(b'r', c"sasb")?;
                    self.append(&Arg::Str(path))?;
                    self.append(&Arg::Strs(argv))?;
                    self.fixed(&Bool(0))?;
                    self.close()?;
                    self.close()?;
                }
            }
            self.close()?; // v
            self.close()?; // r
        }
        self.close()
    }

    /// Whether this is the signal `interface.member`.
    pub fn is_signal(&self, interface: &str, member: &str) -> bool {
        let (Ok(i), Ok(m)) = (CString::new(interface), CString::new(member)) else {
            return false;
        };
        // SAFETY: message live, strings NUL-terminated.
        unsafe { ffi::sd_bus_message_is_signal(self.ptr.as_ptr(), i.as_ptr(), m.as_ptr()) > 0 }
    }

    /// The object path of the message (a signal's sender object).
    pub fn path(&self) -> String {
        // SAFETY: message live; the string is copied at once.
        owned(unsafe { ffi::sd_bus_message_get_path(self.ptr.as_ptr()) })
    }

    fn read_ptr(&self, t: u8) -> Result<String, Errno> {
        let mut p: *const c_char = ptr::null();
        // SAFETY: for 's', 'o' and 'g' sd-bus stores a `const char *` into the message.
        let r = unsafe {
            ffi::sd_bus_message_read_basic(
                self.ptr.as_ptr(),
                kind(t),
                ptr::from_mut(&mut p).cast::<c_void>(),
            )
        };
        match Errno::check(r)? {
            0 => Err(Errno(libc::ENXIO)),
            _ => Ok(owned(p)),
        }
    }

    /// The next argument, a string (`s`).
    pub fn read_str(&self) -> Result<String, Errno> {
        self.read_ptr(b's')
    }

    /// The next argument, an object path (`o`).
    pub fn read_path(&self) -> Result<String, Errno> {
        self.read_ptr(b'o')
    }

    fn read_fixed<T: Fixed>(&self) -> Result<T, Errno> {
        let mut v = T::default();
        // SAFETY: `Fixed` pairs each type letter with the Rust type sd-bus writes for it
        // (u: u32, i: i32, t: u64, b: a C int); sd-bus checks the letter against the message.
        let r = unsafe {
            ffi::sd_bus_message_read_basic(
                self.ptr.as_ptr(),
                kind(T::CODE),
                ptr::from_mut(&mut v).cast::<c_void>(),
            )
        };
        match Errno::check(r)? {
            0 => Err(Errno(libc::ENXIO)),
            _ => Ok(v),
        }
    }

    pub fn read_u32(&self) -> Result<u32, Errno> {
        self.read_fixed()
    }

    pub fn read_i32(&self) -> Result<i32, Errno> {
        self.read_fixed()
    }

    pub fn read_u64(&self) -> Result<u64, Errno> {
        self.read_fixed()
    }

    pub fn read_bool(&self) -> Result<bool, Errno> {
        self.read_fixed::<Bool>().map(|b| b.0 != 0)
    }

    /// The next argument, a byte array (`ay`).
    pub fn read_bytes(&self) -> Result<Vec<u8>, Errno> {
        let mut p: *const c_void = ptr::null();
        let mut n: usize = 0;
        // SAFETY: for 'y', sd-bus points `p` at `n` bytes inside the message.
        Errno::check(unsafe {
            ffi::sd_bus_message_read_array(self.ptr.as_ptr(), kind(b'y'), &mut p, &mut n)
        })?;
        if p.is_null() || n == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: `p` points at `n` readable bytes that live as long as the message; copied.
        Ok(unsafe { std::slice::from_raw_parts(p.cast::<u8>(), n) }.to_vec())
    }

    /// Enters a container: `kind` is `a` (array), `r` (struct), `v` (variant), `e` (dict
    /// entry), `contents` its signature. `Ok(false)` at the end of an array.
    pub fn enter(&self, kind_: u8, contents: &str) -> Result<bool, Errno> {
        let c = CString::new(contents).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: message live, signature NUL-terminated.
        let r = unsafe {
            ffi::sd_bus_message_enter_container(self.ptr.as_ptr(), kind(kind_), c.as_ptr())
        };
        Errno::check(r).map(|r| r > 0)
    }

    pub fn exit(&self) -> Result<(), Errno> {
        // SAFETY: message live; sd-bus checks that a container is open.
        Errno::check(unsafe { ffi::sd_bus_message_exit_container(self.ptr.as_ptr()) }).map(|_| ())
    }

    /// Skips the next arguments of signature `types`.
    pub fn skip(&self, types: &str) -> Result<(), Errno> {
        let c = CString::new(types).map_err(|_| Errno(libc::EINVAL))?;
        // SAFETY: message live, signature NUL-terminated.
        Errno::check(unsafe { ffi::sd_bus_message_skip(self.ptr.as_ptr(), c.as_ptr()) }).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_an_errno_not_a_panic() {
        let dir = std::env::temp_dir().join(format!("fm-sdbus-{}", std::process::id()));
        let addr = format!("unix:path={}/nothing-here", dir.display());
        let e = Bus::open_address(&addr).err();
        assert_eq!(e, Some(Errno(libc::ENOENT)));
        assert!(e.is_some_and(Errno::is_disconnect));
        assert_eq!(
            Bus::open_address("unix:path=/a\0b").err(),
            Some(Errno(libc::EINVAL))
        );
    }

    #[test]
    fn a_peer_that_hangs_up_is_a_disconnect() {
        // A listening socket that accepts and closes at once: the call fails, as a broken
        // connection (what a `systemctl daemon-reexec` does to us), not as an error reply.
        let dir = std::env::temp_dir().join(format!("fm-sdbus-hup-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let sock = dir.join("s");
        let _ = std::fs::remove_file(&sock);
        let listener = std::os::unix::net::UnixListener::bind(&sock)
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", sock.display()));
        let t = std::thread::spawn(move || {
            if let Ok((s, _)) = listener.accept() {
                drop(s);
            }
        });
        let bus = Bus::open_address(&format!("unix:path={}", sock.display()));
        let r = bus.as_ref().map(|b| {
            b.call(
                "org.freedesktop.systemd1",
                "/org/freedesktop/systemd1",
                "org.freedesktop.systemd1.Manager",
                "ListUnitsByNames",
                &[Arg::Strs(&["a.service"])],
                Duration::from_secs(5),
            )
        });
        let _ = t.join();
        let _ = std::fs::remove_dir_all(&dir);
        match r {
            Ok(Err(e)) => assert!(e.is_disconnect(), "{e:?}"),
            Ok(Ok(_)) => panic!("a reply from a peer that hung up"),
            Err(e) => assert!(e.is_disconnect(), "{e:?}"),
        }
    }

    #[test]
    fn call_errors_read_like_systemctl() {
        let e = CallError {
            errno: Errno(libc::ENOENT),
            name: Some("org.freedesktop.systemd1.NoSuchUnit".into()),
            message: Some("Unit ghost.service not found.".into()),
        };
        assert_eq!(e.to_string(), "Unit ghost.service not found.");
        assert!(!e.is_disconnect(), "an answer, not a broken connection");
        let local = CallError::from_errno(Errno(libc::ECONNRESET));
        assert!(local.is_disconnect());
        assert_eq!(local.to_string(), "Connection reset by peer (os error 104)");
    }
}

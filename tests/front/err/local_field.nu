bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    let x = $e.pid
    emit $x.y
}

bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    if $e.pid < 100 { return }
    emit $e.pid
}

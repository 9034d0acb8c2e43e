bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    let x = 1
    $x = 2
}

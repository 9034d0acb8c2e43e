bpf_tracepoint "syscalls:sys_enter_openat" {|event| count() }

bpf_tracepoint "syscalls:sys_enter_openat" {|e| return 5 }

bpf_tracepoint "syscalls:sys_enter_openat" {|e| sum $e.filename }

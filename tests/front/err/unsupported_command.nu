bpf_tracepoint "syscalls:sys_enter_openat" {|e| print $e.filename }

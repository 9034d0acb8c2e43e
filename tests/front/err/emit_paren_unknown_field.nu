bpf_tracepoint "syscalls:sys_enter_openat" {|e| emit($e.filenam) }

bpf_tracepoint "syscalls:sys_enter_openat" --strlen 256 {|e| emit $e.filename }

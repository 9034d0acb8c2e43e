bpf_tracepoint "syscalls:sys_enter_openat" --strlen 99999 {|e| emit $e.filename }

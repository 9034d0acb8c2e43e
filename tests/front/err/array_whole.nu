bpf_tracepoint "raw_syscalls:sys_enter" {|e| emit $e.args }

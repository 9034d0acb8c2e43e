bpf_tracepoint "syscalls:sys_enter_opnat" {|e| count }

bpf_kprobe "do_sys_opn" {|ctx| count }

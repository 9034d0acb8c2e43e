bpf_uprobe "bash" "readline" {|ctx| count }

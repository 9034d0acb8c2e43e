bpf_profile --hz 0 {|ctx| count }

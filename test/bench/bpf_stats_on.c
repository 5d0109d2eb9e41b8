/* bpf_stats_on: keeps the kernel's BPF run-time statistics (run_time_ns,
 * run_cnt of every program, as `bpftool prog show` prints them) switched on
 * until it is killed, through BPF_ENABLE_STATS: the statistics stop with
 * the last such fd, and the kernel.bpf_stats_enabled sysctl is never
 * touched. For test/bench/policy.sh (BPF time per packet on real traffic). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

static void on_signal(int sig)
{
	(void)sig;
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);

	if (fd < 0) {
		fprintf(stderr, "bpf_stats_on: BPF_ENABLE_STATS: %s\n", strerror(errno));
		return 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	printf("on\n");
	fflush(stdout);
	pause();
	close(fd);
	return 0;
}

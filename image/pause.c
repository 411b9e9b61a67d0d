/*
 * The pod sandbox's process: it holds the pod's namespaces open and does nothing else. Like Kubernetes' own pause
 * (build/pause/linux/pause.c), it is PID 1 of the sandbox, so it must
 *   - exit on SIGINT and SIGTERM, which the runtime sends to stop the sandbox (PID 1 has no default action for them);
 *   - reap children, so that a process re-parented to it (with a shared PID namespace) does not stay a zombie.
 * Built static (no libc in the image) by image/build.sh --pause.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
  (void)signo;
  _exit(0);
}

static void reap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  if (getpid() != 1) fprintf(stderr, "pause: warning: not PID 1\n");
  for (;;) pause();
}

/* The D-Bus floor of `make bench`: the least a program can do for one steady-state run.
 * It runs the check (argv[1], no shell) and reads the states of the units named after it
 * with ONE ListUnitsByNames call, over systemd's private socket with sd-bus (what systemctl
 * and failover-manager use as root), and prints them like `systemctl is-active`.
 *
 *   dbus-floor CHECK UNIT...      exit 0 when every state was read
 *
 * Built by bench/bench.sh with `cc -O2 bench/dbus-floor.c -lsystemd`. No config, no logging,
 * no plan: a lower bound to measure the tool against, not a tool. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <systemd/sd-bus.h>

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: dbus-floor CHECK UNIT...\n");
                return 2;
        }
        pid_t pid = fork();
        if (pid < 0)
                return 1;
        if (pid == 0) {
                execv(argv[1], (char *[]) { argv[1], NULL });
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return 1;

        sd_bus *bus = NULL;
        sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, "unix:path=/run/systemd/private");
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1",
                                                   "/org/freedesktop/systemd1",
                                                   "org.freedesktop.systemd1.Manager",
                                                   "ListUnitsByNames");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, argv + 2);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &error, &reply);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "(ssssssouso)");
        int n = 0;
        while (r >= 0) {
                const char *active;
                r = sd_bus_message_read(reply, "(ssssssouso)", NULL, NULL, NULL, &active,
                                        NULL, NULL, NULL, NULL, NULL, NULL);
                if (r <= 0)
                        break;
                puts(active);
                n++;
        }
        if (r < 0)
                fprintf(stderr, "dbus-floor: %s\n", error.message ? error.message : "error");
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        sd_bus_message_unref(m);
        sd_bus_flush_close_unref(bus);
        return r < 0 || n != argc - 2;
}

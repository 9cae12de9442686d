/* test_ha_discovery.c — Home Assistant discovery without sockets
 * (gateways/device/ha_discovery.c, common/ha_config.c): the JSON of each
 * component, the keys the config check refuses, and what the discovery
 * publishes, subscribes to and writes for a link state, a line, a command,
 * Home Assistant's `online` and the broker's list of old configs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "config.h"
#include "config_check.h"
#include "ha_discovery.h"

/* ------------------------------------------------------------------ helpers */

static sb_config_t *load(const char *text, char **problems)
{
    char path[] = "/tmp/sb-test-ha-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
    close(fd);
    sb_config_t *config = NULL;
    *problems = sb_config_verify(path, NULL, &config);
    unlink(path);
    return config;
}

static sb_config_t *load_ok(const char *text)
{
    char *problems = NULL;
    sb_config_t *config = load(text, &problems);
    if (problems)
        fail_msg("%s", problems);
    assert_non_null(config);
    return config;
}

/* The problem a config gets, which must contain `expected`. */
static void expect_problem(const char *text, const char *expected)
{
    char *problems = NULL;
    sb_config_t *config = load(text, &problems);
    assert_null(config);
    assert_non_null(problems);
    if (!strstr(problems, expected))
        fail_msg("expected '%s' in: %s", expected, problems);
    free(problems);
}

static json_t *config_json(const sb_config_t *config, const char *device, const char *hub)
{
    const sb_device_config_t *found = sb_config_device(config, device);
    char *text = sb_ha_discovery_json(device, &found->ha, hub);
    assert_non_null(text);
    json_error_t error;
    json_t *root = json_loads(text, 0, &error);
    assert_non_null(root);
    free(text);
    return root;
}

static const char *text_of(json_t *root, const char *key)
{
    json_t *value = json_object_get(root, key);
    return value ? json_string_value(value) : NULL;
}

/* What the fake ops were asked, one "KIND TOPIC PAYLOAD" line each. */
typedef struct {
    char log[16384];
} recorder_t;

static void record(recorder_t *recorder, const char *kind, const char *a, const char *b)
{
    size_t used = strlen(recorder->log);
    snprintf(recorder->log + used, sizeof recorder->log - used, "%s %s %s\n", kind, a, b);
}

static void fake_publish(void *arg, const char *topic, const char *payload)
{
    record(arg, "pub", topic, *payload == '{' ? "{json}" : payload);
}

static void fake_subscribe(void *arg, const char *filter)
{
    record(arg, "sub", filter, "");
}

static void fake_list(void *arg, const char *filter)
{
    record(arg, "list", filter, "");
}

static void fake_command(void *arg, const char *device, const char *line, bool call)
{
    char text[256];
    snprintf(text, sizeof text, "%s %s", call ? "call" : "send", line);
    record(arg, "device", device, text);
}

static const sb_ha_ops_t s_fake_ops = { fake_publish, fake_subscribe, fake_list, fake_command };

static void expect_logged(recorder_t *recorder, const char *line)
{
    if (!strstr(recorder->log, line))
        fail_msg("expected '%s' in:\n%s", line, recorder->log);
}

static const char s_home[] =
    "[device lamp]\n"
    "connect = 127.0.0.1:9\n"
    "ha_component = switch\n"
    "ha_name = Desk lamp\n"
    "ha_command_on = led on\n"
    "ha_command_off = led off\n"
    "ha_state_pattern = ^led=(on|off)$\n"
    "ha_state_on = on\n"
    "ha_state_off = off\n"
    "[device porch]\n"
    "connect = 127.0.0.1:9\n"
    "ha_component = sensor\n"
    "ha_unit = °C\n"
    "ha_device_class = temperature\n"
    "ha_state_pattern = ^temp ([-0-9.]+)\n"
    "[device door]\n"
    "ha_component = binary_sensor\n"
    "ha_device_class = door\n"
    "ha_state_on = open\n"
    "ha_state_off = closed\n"
    "[device bell]\n"
    "connect = 127.0.0.1:9\n"
    "ha_component = button\n"
    "ha_command_on = ring\n"
    "ha_command_mode = call\n"
    "[device plain]\n"
    "connect = 127.0.0.1:9\n"
    "[ha kitchen_light]\n"
    "ha_component = switch\n"
    "ha_state_topic = zigbee2mqtt/kitchen/state\n"
    "ha_command_topic = zigbee2mqtt/kitchen/set/state\n"
    "ha_command_on = on\n"
    "ha_command_off = off\n"
    "ha_state_on = on\n"
    "ha_state_off = off\n"
    "[ha plain]\n"
    "ha_component = sensor\n"
    "ha_state_topic = $sys/devices/plain\n";

/* ------------------------------------------------------------------ JSON */

static void test_switch_json(void **state)
{
    (void) state;
    sb_config_t *config = load_ok(s_home);
    json_t *root = config_json(config, "lamp", "home");
    assert_true(json_is_null(json_object_get(root, "name")));
    assert_string_equal(text_of(root, "unique_id"), "switchboard_home_lamp");
    assert_string_equal(text_of(root, "state_topic"), "switchboard/home/lamp/state");
    assert_string_equal(text_of(root, "command_topic"), "switchboard/home/lamp/set");
    assert_string_equal(text_of(root, "availability_topic"), "switchboard/home/lamp/availability");
    assert_string_equal(text_of(root, "payload_available"), "online");
    assert_string_equal(text_of(root, "payload_not_available"), "offline");
    assert_string_equal(text_of(root, "payload_on"), "ON");
    assert_string_equal(text_of(root, "payload_off"), "OFF");
    assert_string_equal(text_of(root, "state_on"), "on");
    assert_string_equal(text_of(root, "state_off"), "off");
    json_t *device = json_object_get(root, "device");
    assert_string_equal(text_of(device, "name"), "Desk lamp");
    assert_string_equal(json_string_value(json_array_get(json_object_get(device, "identifiers"), 0)),
                        "switchboard_home_lamp");
    assert_string_equal(text_of(json_object_get(root, "origin"), "name"), "switchboard");
    assert_null(json_object_get(root, "unit_of_measurement"));
    json_decref(root);
    sb_config_destroy(&config);
}

static void test_other_components_json(void **state)
{
    (void) state;
    sb_config_t *config = load_ok(s_home);
    json_t *porch = config_json(config, "porch", "home");
    assert_string_equal(text_of(porch, "unit_of_measurement"), "°C");
    assert_string_equal(text_of(porch, "device_class"), "temperature");
    assert_string_equal(text_of(porch, "state_topic"), "switchboard/home/porch/state");
    assert_null(json_object_get(porch, "command_topic"));
    assert_string_equal(text_of(json_object_get(porch, "device"), "name"), "porch");
    json_decref(porch);
    json_t *door = config_json(config, "door", "home");
    assert_string_equal(text_of(door, "payload_on"), "open");
    assert_string_equal(text_of(door, "payload_off"), "closed");
    json_decref(door);
    json_t *bell = config_json(config, "bell", "home");
    assert_string_equal(text_of(bell, "payload_press"), "PRESS");
    assert_string_equal(text_of(bell, "command_topic"), "switchboard/home/bell/set");
    assert_null(json_object_get(bell, "state_topic"));
    json_decref(bell);
    assert_null(sb_ha_discovery_json("plain", &sb_config_device(config, "plain")->ha, "home"));
    sb_config_destroy(&config);
}

/* An [ha NAME] topic: its own topics, its payloads, no availability. */
static void test_topic_json(void **state)
{
    (void) state;
    sb_config_t *config = load_ok(s_home);
    assert_int_equal(sb_config_ha_topic_count(config), 2);
    const sb_ha_topic_config_t *light = sb_config_ha_topic_at(config, 0);
    char *text = sb_ha_discovery_json(light->name, &light->ha, "home");
    json_t *root = json_loads(text, 0, NULL);
    free(text);
    assert_string_equal(text_of(root, "unique_id"), "switchboard_home_kitchen_light");
    assert_string_equal(text_of(root, "state_topic"), "zigbee2mqtt/kitchen/state");
    assert_string_equal(text_of(root, "command_topic"), "zigbee2mqtt/kitchen/set/state");
    assert_string_equal(text_of(root, "payload_on"), "on");
    assert_string_equal(text_of(root, "payload_off"), "off");
    assert_null(json_object_get(root, "availability_topic"));
    assert_string_equal(text_of(json_object_get(root, "device"), "model"), "switchboard topic");
    json_decref(root);
    sb_config_destroy(&config);
}

/* A switch without a state pattern has no state topic: Home Assistant is optimistic. */
static void test_optimistic_switch(void **state)
{
    (void) state;
    sb_config_t *config = load_ok("[device fan]\nconnect = 127.0.0.1:9\nha_component = switch\n"
                                  "ha_command_on = fan 1\nha_command_off = fan 0\n");
    json_t *root = config_json(config, "fan", "hub");
    assert_null(json_object_get(root, "state_topic"));
    assert_string_equal(text_of(root, "command_topic"), "switchboard/hub/fan/set");
    json_decref(root);
    sb_config_destroy(&config);
}

/* ------------------------------------------------------------------ config check */

static void test_config_problems(void **state)
{
    (void) state;
    expect_problem("[device a]\nha_component = light\n", "ha_component must be one of switch");
    expect_problem("[device a]\nha_name = A\n", "ha_ keys need ha_component");
    expect_problem("[device a]\nha_component = switch\nha_command_on = x\n",
                   "a switch needs ha_command_on and ha_command_off");
    expect_problem("[device a]\nha_component = button\n", "a button needs ha_command_on");
    expect_problem("[device a]\nha_component = sensor\nha_command_on = x\n",
                   "a sensor sends no commands");
    expect_problem("[device a]\nha_component = switch\nha_command_on = x\nha_command_off = y\n"
                   "ha_unit = W\n", "ha_unit is for a sensor");
    expect_problem("[device a]\nha_component = sensor\nha_state_pattern = (a)(b)\n",
                   "one group (...) at most");
    expect_problem("[device a]\nha_component = sensor\nha_state_pattern = (a\n",
                   "is not a regular expression");
    expect_problem("[device a]\nha_component = sensor\nha_device_class = Temp!\n",
                   "ha_device_class must be");
    expect_problem("[device a]\nha_component = sensor\nha_colour = red\n", "unknown key 'ha_colour'");
    expect_problem("[device a.b]\nha_component = sensor\n", "letters, digits, _ or -");
    expect_problem("[hub]\nname = my_home\n", "hub.name 'my_home' must be");
    expect_problem("[device a]\nha_component = sensor\nha_command_mode = maybe\n",
                   "ha_command_mode must be send or call");
    expect_problem("[device a]\nha_component = sensor\nha_state_topic = x\n",
                   "are for an [ha NAME] section");
    expect_problem("[ha t]\n", "ha_ keys need ha_component");
    expect_problem("[ha t]\nha_component = sensor\n", "a sensor of a topic needs ha_state_topic");
    expect_problem("[ha t]\nha_component = switch\nha_state_topic = a\n",
                   "a switch of a topic needs ha_command_topic");
    expect_problem("[ha t]\nha_component = switch\nha_command_topic = $sys/x\n",
                   "ha_command_topic must be a topic");
    expect_problem("[ha t]\nha_component = sensor\nha_state_topic = a/#\n",
                   "ha_state_topic must be a topic");
    expect_problem("[ha t]\nha_component = sensor\nha_state_topic = a\nha_state_pattern = x\n",
                   "a topic's state is its payload");
    expect_problem("[ha t]\nha_component = sensor\nha_state_topic = a\ncolour = red\n",
                   "unknown key 'colour' in [ha t]");
    expect_problem("[device t]\nha_component = sensor\n[ha t]\nha_component = sensor\n"
                   "ha_state_topic = a\n", "announced under that name already");
}

/* ------------------------------------------------------------------ the discovery */

static void test_discovery_flow(void **state)
{
    (void) state;
    sb_config_t *config = load_ok(s_home);
    recorder_t *r = calloc(1, sizeof *r);
    sb_ha_settings_t settings = { "home", "homeassistant" };
    sb_ha_discovery_t *ha = sb_ha_discovery_new(config, &settings, &s_fake_ops, r);
    assert_non_null(ha);
    assert_int_equal(sb_ha_discovery_count(ha), 6);

    sb_ha_discovery_start(ha);
    expect_logged(r, "sub homeassistant/status \n");
    expect_logged(r, "sub switchboard/home/+/set \n");
    expect_logged(r, "pub homeassistant/switch/switchboard_home_lamp/config {json}\n");
    expect_logged(r, "pub homeassistant/sensor/switchboard_home_porch/config {json}\n");
    expect_logged(r, "pub homeassistant/binary_sensor/switchboard_home_door/config {json}\n");
    expect_logged(r, "pub homeassistant/button/switchboard_home_bell/config {json}\n");
    expect_logged(r, "pub homeassistant/switch/switchboard_home_kitchen_light/config {json}\n");
    expect_logged(r, "pub homeassistant/sensor/switchboard_home_plain/config {json}\n");
    assert_null(strstr(r->log, "kitchen_light/availability"));
    expect_logged(r, "pub switchboard/home/lamp/availability offline\n");
    expect_logged(r, "list homeassistant/+/+/config \n");

    r->log[0] = '\0';
    sb_ha_discovery_link_state(ha, "lamp", "connecting");   /* still offline: nothing new */
    sb_ha_discovery_link_state(ha, "lamp", "connected");
    sb_ha_discovery_link_state(ha, "plain", "connected");   /* its [ha plain] is no device */
    assert_string_equal(r->log, "pub switchboard/home/lamp/availability online\n");

    r->log[0] = '\0';
    sb_ha_discovery_line(ha, "lamp", "led=on");
    sb_ha_discovery_line(ha, "lamp", "hello");               /* no match: no state */
    sb_ha_discovery_line(ha, "porch", "temp 21.5 C");
    sb_ha_discovery_line(ha, "door", "open");                /* no pattern: the whole line */
    sb_ha_discovery_line(ha, "bell", "rang");                /* a button has no state */
    assert_string_equal(r->log, "pub switchboard/home/lamp/state on\n"
                                "pub switchboard/home/porch/state 21.5\n"
                                "pub switchboard/home/door/state open\n");

    r->log[0] = '\0';
    sb_ha_discovery_event(ha, "switchboard/home/lamp/set", "ON");
    sb_ha_discovery_event(ha, "switchboard/home/lamp/set", "OFF");
    sb_ha_discovery_event(ha, "switchboard/home/lamp/set", "TOGGLE");   /* ignored */
    sb_ha_discovery_event(ha, "switchboard/home/bell/set", "PRESS");
    sb_ha_discovery_event(ha, "switchboard/home/porch/set", "ON");      /* a sensor: ignored */
    sb_ha_discovery_event(ha, "switchboard/home/ghost/set", "ON");      /* not ours: ignored */
    sb_ha_discovery_event(ha, "switchboard/home/kitchen_light/set", "ON");   /* a topic's */
    assert_string_equal(r->log, "device lamp send led on\n"
                                "device lamp send led off\n"
                                "device bell call ring\n");

    r->log[0] = '\0';
    sb_ha_discovery_event(ha, "homeassistant/status", "offline");
    assert_string_equal(r->log, "");
    sb_ha_discovery_event(ha, "homeassistant/status", "online");
    expect_logged(r, "pub homeassistant/switch/switchboard_home_lamp/config {json}\n");
    expect_logged(r, "pub switchboard/home/lamp/availability online\n");
    expect_logged(r, "pub switchboard/home/porch/availability offline\n");

    r->log[0] = '\0';
    sb_ha_discovery_stop(ha);
    expect_logged(r, "pub switchboard/home/lamp/availability offline\n");
    sb_ha_discovery_destroy(&ha);
    free(r);
    sb_config_destroy(&config);
}

/* Old configs of this hub go; those of other hubs (even "home-2", whose
 * ids start with "switchboard_home-") and those still configured stay. */
static void test_old_configs_removed(void **state)
{
    (void) state;
    sb_config_t *config = load_ok(s_home);
    recorder_t *r = calloc(1, sizeof *r);
    sb_ha_settings_t settings = { "home", "homeassistant" };
    sb_ha_discovery_t *ha = sb_ha_discovery_new(config, &settings, &s_fake_ops, r);
    sb_ha_discovery_retained(ha,
        "5 homeassistant/switch/switchboard_home_lamp/config \"{\\\"a\\\":1}\" "
        "homeassistant/sensor/switchboard_home_lamp/config \"{}\" "
        "homeassistant/switch/switchboard_home_gone/config \"{}\" "
        "homeassistant/switch/switchboard_home-2_gone/config \"{}\" "
        "homeassistant/light/zigbee2mqtt_bulb/config \"{}\"");
    assert_string_equal(r->log, "pub homeassistant/sensor/switchboard_home_lamp/config \n"
                                "pub homeassistant/switch/switchboard_home_gone/config \n");
    r->log[0] = '\0';
    sb_ha_discovery_retained(ha, "0");
    sb_ha_discovery_retained(ha, "2 \"unterminated");
    assert_string_equal(r->log, "");
    sb_ha_discovery_destroy(&ha);
    free(r);
    sb_config_destroy(&config);
}

static void test_bad_settings(void **state)
{
    (void) state;
    sb_config_t *config = sb_config_new();
    sb_ha_settings_t bad_hub = { "my_home", "homeassistant" };
    sb_ha_settings_t bad_prefix = { "home", "home/+/x" };
    assert_null(sb_ha_discovery_new(config, &bad_hub, &s_fake_ops, NULL));
    assert_null(sb_ha_discovery_new(config, &bad_prefix, &s_fake_ops, NULL));
    sb_config_destroy(&config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_switch_json),
        cmocka_unit_test(test_other_components_json),
        cmocka_unit_test(test_topic_json),
        cmocka_unit_test(test_optimistic_switch),
        cmocka_unit_test(test_config_problems),
        cmocka_unit_test(test_discovery_flow),
        cmocka_unit_test(test_old_configs_removed),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

"""Home Assistant MQTT discovery (issue 14 §2, docs/home-assistant.md): a
paho client plays Home Assistant against sb-gateway-mqtt while
sb-gateway-device links fake devices announced with `ha_*` keys. It reads
the retained discovery configs and checks the keys Home Assistant needs,
turns a switch on and off (the device gets its line, the state follows
the device's answer), reads a sensor's state, sees availability follow the
device link, gets the configs again when it says `online` on
homeassistant/status, and sees a device's config cleared when a restarted
device gateway no longer has it."""
import json
import queue

from conftest import READ_TIMEOUT, STARTUP_TIMEOUT, Client, wait_until
from device_support import device_section, fast, start_device_gateway
from device_support import fake_devices  # noqa: F401 - fixture
from mqtt_support import V311
from test_mqtt import mqtt_hub, paho_clients  # noqa: F401 - fixtures
from test_retained import _wait_for_the_new_broker

LAMP_CONFIG = "homeassistant/switch/switchboard_home_lamp/config"
PORCH_CONFIG = "homeassistant/sensor/switchboard_home_porch/config"
LAMP = "switchboard/home/lamp/"
PORCH = "switchboard/home/porch/"


def lamp_answers(line):
    """The lamp reports its LED after each command, as many devices do."""
    return {"led on": "led=on", "led off": "led=off"}.get(line)


def fan_answers(line):
    """The fan answers each command (a `call`): its answer is the state."""
    return {"fan 1": "fan is 1", "fan 0": "fan is 0"}.get(line)


def hub_config(lamp_port, porch_port=None, fan_port=None):
    text = "[hub]\nname = home\n\n" + device_section(
        "lamp", connect="127.0.0.1:%d" % lamp_port, ha_component="switch", ha_name="Desk lamp",
        ha_command_on="led on", ha_command_off="led off", ha_state_pattern="^led=(on|off)$",
        ha_state_on="on", ha_state_off="off", **fast())
    if porch_port:
        text += device_section(
            "porch", connect="127.0.0.1:%d" % porch_port, ha_component="sensor",
            ha_unit="°C", ha_device_class="temperature",
            ha_state_pattern="^temp ([-0-9.]+)$", **fast())
    if fan_port:
        text += device_section(
            "fan", connect="127.0.0.1:%d" % fan_port, ha_component="switch",
            ha_command_on="fan 1", ha_command_off="fan 0", ha_command_mode="call",
            ha_state_pattern="^fan is ([01])$", ha_state_on="1", ha_state_off="0", **fast())
    return text


class HomeAssistant:
    """A paho client subscribed as Home Assistant would be: every message
    it gets is kept per topic (payload, retain), in order."""

    def __init__(self, paho, *filters):
        self.paho = paho
        self.seen = {}
        for topic_filter in filters:
            paho.subscribe(topic_filter)

    def _drain(self):
        while True:
            try:
                message = self.paho.messages.get_nowait()
            except queue.Empty:
                return
            self.seen.setdefault(message.topic, []).append(
                (message.payload.decode(), bool(message.retain)))

    def payloads(self, topic):
        self._drain()
        return [payload for payload, _ in self.seen.get(topic, [])]

    def last(self, topic):
        payloads = self.payloads(topic)
        return payloads[-1] if payloads else None

    def wait_last(self, topic, payload, timeout=READ_TIMEOUT):
        wait_until(lambda: self.last(topic) == payload, timeout,
                   "%r on %s (has %r)" % (payload, topic, self.payloads(topic)))

    def config(self, topic, timeout=STARTUP_TIMEOUT):
        wait_until(lambda: self.last(topic), timeout, "a discovery config on %s" % topic)
        return json.loads(self.last(topic))


def test_home_assistant_reads_drives_and_watches_the_devices(
        mqtt_hub, paho_clients, fake_devices, processes):
    lamp = fake_devices(answer=lamp_answers)
    porch = fake_devices(answer=None)
    fan = fake_devices(answer=fan_answers)
    c = mqtt_hub(config=hub_config(lamp.port, porch.port, fan.port))
    start_device_gateway(processes, c)
    ha = HomeAssistant(paho_clients(c.mqtt_port, client_id="home-assistant", version=V311),
                       "homeassistant/#", "switchboard/home/#")

    switch = ha.config(LAMP_CONFIG)
    for key in ("unique_id", "command_topic", "state_topic", "availability_topic", "device"):
        assert key in switch, "%s missing from %r" % (key, switch)
    assert switch["unique_id"] == "switchboard_home_lamp"
    assert switch["command_topic"] == LAMP + "set"
    assert switch["state_topic"] == LAMP + "state"
    assert switch["availability_topic"] == LAMP + "availability"
    assert (switch["payload_available"], switch["payload_not_available"]) == ("online", "offline")
    assert (switch["payload_on"], switch["payload_off"]) == ("ON", "OFF")
    assert (switch["state_on"], switch["state_off"]) == ("on", "off")
    assert switch["device"]["identifiers"] == ["switchboard_home_lamp"]
    assert switch["device"]["name"] == "Desk lamp"
    sensor = ha.config(PORCH_CONFIG)
    assert sensor["unit_of_measurement"] == "°C"
    assert sensor["device_class"] == "temperature"
    assert sensor["state_topic"] == PORCH + "state"
    assert "command_topic" not in sensor

    # Availability follows the link.
    ha.wait_last(LAMP + "availability", "online", timeout=STARTUP_TIMEOUT)
    ha.wait_last(PORCH + "availability", "online", timeout=STARTUP_TIMEOUT)

    # Turning the switch on and off writes the configured lines; the state
    # is what the lamp answers.
    ha.paho.publish(LAMP + "set", "ON")
    lamp.wait_line("led on")
    ha.wait_last(LAMP + "state", "on")
    ha.paho.publish(LAMP + "set", "OFF")
    lamp.wait_line("led off")
    ha.wait_last(LAMP + "state", "off")
    ha.paho.publish(LAMP + "set", "TOGGLE")        # not a payload of a switch: ignored
    ha.paho.publish(LAMP + "set", "ON")
    ha.wait_last(LAMP + "state", "on")
    assert lamp.lines() == ["led on", "led off", "led on"]
    # Another client's call is answered to it, and the answer is a state too.
    with Client(c.port) as script:
        assert script.request("device lamp call led off") == "OK led=off"
    ha.wait_last(LAMP + "state", "off")

    # With ha_command_mode = call the answer to the command is the state.
    ha.wait_last("switchboard/home/fan/availability", "online", timeout=STARTUP_TIMEOUT)
    ha.paho.publish("switchboard/home/fan/set", "ON")
    ha.wait_last("switchboard/home/fan/state", "1")
    ha.paho.publish("switchboard/home/fan/set", "OFF")
    ha.wait_last("switchboard/home/fan/state", "0")
    assert fan.lines() == ["fan 1", "fan 0"]

    # A sensor's state is the group of its pattern; other lines are no state.
    porch.send("hello", "temp 21.5")
    ha.wait_last(PORCH + "state", "21.5")
    assert ha.payloads(PORCH + "state") == ["21.5"]

    # The device goes away: offline; it comes back: online.
    lamp.stop_listening()
    ha.wait_last(LAMP + "availability", "offline")
    lamp.listen_again()
    ha.wait_last(LAMP + "availability", "online", timeout=STARTUP_TIMEOUT)

    # Home Assistant restarted and says so: every config comes again.
    announced = len(ha.payloads(LAMP_CONFIG)), len(ha.payloads(PORCH_CONFIG))
    ha.paho.publish("homeassistant/status", "online")
    wait_until(lambda: len(ha.payloads(LAMP_CONFIG)) > announced[0]
               and len(ha.payloads(PORCH_CONFIG)) > announced[1], READ_TIMEOUT,
               "the configs announced again")
    assert json.loads(ha.last(LAMP_CONFIG)) == switch


def test_a_device_left_out_of_the_config_is_removed_from_home_assistant(
        mqtt_hub, paho_clients, fake_devices, processes):
    lamp = fake_devices(answer=lamp_answers)
    porch = fake_devices(answer=None)
    c = mqtt_hub(config=hub_config(lamp.port, porch.port))
    gateway = start_device_gateway(processes, c)
    ha = HomeAssistant(paho_clients(c.mqtt_port, client_id="home-assistant", version=V311),
                       "homeassistant/#", "switchboard/home/#")
    ha.config(LAMP_CONFIG)
    ha.config(PORCH_CONFIG)
    ha.wait_last(LAMP + "availability", "online", timeout=STARTUP_TIMEOUT)

    # Another integration's config under the same prefix is left alone.
    other = paho_clients(c.mqtt_port, client_id="zigbee2mqtt", version=V311)
    other.client.publish("homeassistant/light/0x00158d_light/config", '{"name":null}',
                         retain=True, qos=1).wait_for_publish(timeout=READ_TIMEOUT)
    ha.wait_last("homeassistant/light/0x00158d_light/config", '{"name":null}')

    processes.stop(gateway.proc)      # a stopping gateway reaches its devices no more
    ha.wait_last(LAMP + "availability", "offline")
    c.config_path.write_text(hub_config(lamp.port))
    start_device_gateway(processes, c)
    ha.wait_last(PORCH_CONFIG, "", timeout=STARTUP_TIMEOUT)       # empty retained: removed

    # What a Home Assistant starting now finds: the lamp, not the porch.
    later = HomeAssistant(paho_clients(c.mqtt_port, client_id="later", version=V311),
                          "homeassistant/#")
    later.config(LAMP_CONFIG)
    wait_until(lambda: later.last("homeassistant/light/0x00158d_light/config"), READ_TIMEOUT,
               "the other integration's config")
    assert later.payloads(PORCH_CONFIG) == []


def test_the_launcher_announces_a_topic_of_an_ha_section(launch_hub, paho_clients, tmp_path):
    """A config with no device, only an [ha NAME] topic: the launcher still
    runs the device gateway, which announces the topic with its own state
    and command topics (Home Assistant reads and writes them directly)."""
    config = tmp_path / "switchboard.conf"
    config.write_text("[hub]\nname = garage\n\n"
                      "[ha door]\nha_component = binary_sensor\nha_device_class = garage_door\n"
                      "ha_state_topic = zigbee2mqtt/garage door\nha_state_on = open\n"
                      "ha_state_off = closed\n\n"
                      "[ha heater]\nha_component = switch\nha_state_topic = heater/state\n"
                      "ha_command_topic = heater/set\nha_command_on = 1\nha_command_off = 0\n"
                      "ha_state_on = 1\nha_state_off = 0\n")
    hub = launch_hub("--config", str(config))
    ha = HomeAssistant(paho_clients(hub.mqtt_port, client_id="home-assistant", version=V311),
                       "homeassistant/#")
    door = ha.config("homeassistant/binary_sensor/switchboard_garage_door/config")
    assert door["state_topic"] == "zigbee2mqtt/garage door"
    assert (door["payload_on"], door["payload_off"]) == ("open", "closed")
    assert door["device_class"] == "garage_door"
    assert "availability_topic" not in door
    heater = ha.config("homeassistant/switch/switchboard_garage_heater/config")
    assert (heater["command_topic"], heater["payload_on"], heater["payload_off"]) == (
        "heater/set", "1", "0")
    assert heater["state_topic"] == "heater/state"


def test_commands_still_reach_the_device_after_a_broker_restart(
        mqtt_hub, paho_clients, fake_devices, processes):
    """The device gateway subscribes again to the command topics and
    announces again when its broker link comes back."""
    lamp = fake_devices(answer=lamp_answers)
    c = mqtt_hub(config=hub_config(lamp.port))
    start_device_gateway(processes, c)
    ha = HomeAssistant(paho_clients(c.mqtt_port, client_id="home-assistant", version=V311),
                       "homeassistant/#", "switchboard/home/#")
    ha.config(LAMP_CONFIG)
    ha.wait_last(LAMP + "availability", "online", timeout=STARTUP_TIMEOUT)

    # Killed before it may have written the retained values: the device
    # gateway announces again to the new broker, which keeps them.
    c.broker.popen.kill()
    c.broker.popen.wait(5)
    broker = processes.start("sb-broker", c.broker.argv)
    _wait_for_the_new_broker(c, broker)
    later = HomeAssistant(paho_clients(c.mqtt_port, client_id="later", version=V311),
                          "homeassistant/#", "switchboard/home/#")
    assert later.config(LAMP_CONFIG)["unique_id"] == "switchboard_home_lamp"
    later.wait_last(LAMP + "availability", "online")

    def switched_on():
        ha.paho.publish(LAMP + "set", "ON")    # until the gateways are linked again
        return "led on" in lamp.lines()
    wait_until(switched_on, STARTUP_TIMEOUT, "the lamp to get `led on` through the new broker",
               interval=0.5)
    ha.wait_last(LAMP + "state", "on")

; spinout's support orchestra: compiled into every engine before the session's
; own code. The macros SPINOUT_* (sizes, instrument numbers, table and channel
; names) are defined by support.cpp from support.hpp, the one place that
; numbers and names live.

$SPINOUT_MAX_CONTROLS_VAR = $SPINOUT_MAX_CONTROLS
; One row of k-args per slot (an instance), passed to the instance as p4.
$SPINOUT_CONTROL_TABLE ftgen 0, 0, -$SPINOUT_SLOTS*$SPINOUT_MAX_CONTROLS, -2, 0
; Each instance writes the cycle count here every cycle: the host sees it end.
$SPINOUT_HEARTBEAT_TABLE ftgen 0, 0, -$SPINOUT_SLOTS, -2, -1
; The generation of each slot: automation of a reused slot stops.
giSpinoutGen ftgen 0, 0, -$SPINOUT_SLOTS, -2, 0
giSpinoutKBus ftgen 0, 0, -$SPINOUT_CONTROL_BUSES, -2, 0
; For each slot, the p2 and p3 an instance ends its init pass with (p3 0: leave
; them): Csound takes an instance's start within its cycle from p2 and its end from
; p2 + p3 once the init pass is over, in doubles; the host computes values that give
; the exact frames (Session::exactTiming).
$SPINOUT_TIMING_TABLE ftgen 0, 0, -$SPINOUT_SLOTS*2, -2, 0
; The automations' breakpoints (time, value, ...), written by the host in blocks.
giSpinoutPairs ftgen 0, 0, -$SPINOUT_PAIRS, -2, 0
; A port's value as automation moves it (the host reads it back every cycle).
giSpinoutPorts ftgen 0, 0, -$SPINOUT_PORTS, -2, 0
; The tables' numbers reach the host through channels: fixed high numbers would
; size Csound's table of tables to them.
chnset $SPINOUT_CONTROL_TABLE, $SPINOUT_CONTROL_TABLE_CHANNEL
chnset $SPINOUT_HEARTBEAT_TABLE, $SPINOUT_HEARTBEAT_TABLE_CHANNEL
chnset giSpinoutGen, $SPINOUT_GENERATION_TABLE_CHANNEL
chnset giSpinoutKBus, $SPINOUT_CONTROL_BUS_TABLE_CHANNEL
chnset giSpinoutPorts, $SPINOUT_PORT_TABLE_CHANNEL
chnset $SPINOUT_TIMING_TABLE, $SPINOUT_TIMING_TABLE_CHANNEL
chnset giSpinoutPairs, $SPINOUT_PAIRS_TABLE_CHANNEL
gaSpinoutBus[] init $SPINOUT_AUDIO_BUSES
; 1 while the voices are warmed up at load (their init passes run, nothing sounds)
$SPINOUT_WARM_UP_FLAG init 0

opcode busin, a, k
  kbus xin
  xout gaSpinoutBus[kbus]
endop

opcode busin, k, k
  kbus xin
  xout tab:k(kbus, giSpinoutKBus)
endop

opcode busout, 0, ka
  kbus, asig xin
  gaSpinoutBus[kbus] = asig
endop

opcode busout, 0, kk
  kbus, kval xin
  tabw kval, kbus, giSpinoutKBus
endop

opcode busmix, 0, ka
  kbus, asig xin
  gaSpinoutBus[kbus] = gaSpinoutBus[kbus] + asig
endop

opcode busmix, 0, kk
  kbus, kval xin
  tabw tab:k(kbus, giSpinoutKBus) + kval, kbus, giSpinoutKBus
endop

; Csound 6.18's outch misplaces a sample-accurate onset when it is the first to
; write spout in a cycle; this instance writes silence first, every cycle.
instr $SPINOUT_SILENCE_INSTR
  a__zero init 0
  outch 1, a__zero
endin

; Automation, the one implementation of the curve shapes (events, buses, ports):
; p4 target index, p5 target table, p6 where its pairs start in giSpinoutPairs (time,
; value, ...; times from 0), p7 how many numbers, p8 shape (0 linear, 1 cos, 2 expon,
; 3 smooth), p9 exponent, p10 overtake (start from the target's current value), p11
; slot (-1: none), p12 the slot's generation: automation of an instance that ended
; stops; p13 seconds the curve is read ahead of the cycle it runs in (a port takes a
; cycle's value at the next).
instr $SPINOUT_AUTOMATION_INSTR
  itarget = p4
  iftarget = p5
  ioff = p6
  inum = p7 / 2
  ishape = p8
  iexp = p9
  islot = p11
  igen = p12
  if p10 == 1 then
    tabw_i tab_i(itarget, iftarget), ioff + 1, giSpinoutPairs
  endif
  kcount init 0
  if islot >= 0 then
    if tab:k(islot, giSpinoutGen) != igen then
      turnoff
    endif
  endif
  kt = kcount * ksmps / sr + p13
  kcount += 1
  kidx init 0
  while kidx < inum - 2 && kt >= tab:k(ioff + kidx*2 + 2, giSpinoutPairs) do
    kidx += 1
  od
  kv0 = tab:k(ioff + kidx*2 + 1, giSpinoutPairs)
  if inum < 2 then
    kv = kv0
  else
    kt0 = tab:k(ioff + kidx*2, giSpinoutPairs)
    kt1 = tab:k(ioff + kidx*2 + 2, giSpinoutPairs)
    kv1 = tab:k(ioff + kidx*2 + 3, giSpinoutPairs)
    kx = kt1 > kt0 ? limit((kt - kt0) / (kt1 - kt0), 0, 1) : 1
    if ishape == 1 then
      kx = (1 - cos(kx * $M_PI)) / 2
    elseif ishape == 2 then
      kx = pow(kx, iexp)
    elseif ishape == 3 then
      kx = kx * kx * (3 - 2 * kx)
    endif
    kv = kv0 + (kv1 - kv0) * kx
  endif
  tabw kv, itarget, iftarget
endin

; Stop: p4 the fractional p1 to turn off, p5 1 to let its release play.
instr $SPINOUT_STOP_INSTR
  turnoff2_i p4, 4, p5
endin

; Host writes replayed from a score (an exported .csd): p4 table, p5 index, p6 value
instr $SPINOUT_TABLE_WRITE_INSTR
  tabw_i p6, p5, p4
endin

; Host writes of a channel replayed from a score: p4 channel name, p5 value
instr $SPINOUT_CHANNEL_WRITE_INSTR
  S__name strget p4
  chnset p5, S__name
endin

; The host's tempo and transport (sessions with host time). The host writes the
; host.* channels at the start of the cycle a position comes in (and counts it);
; in every other cycle this moves them on by one cycle at the tempo and speed,
; so code can follow the beat between the host's positions. Processor::advanceClock
; does the same sums. It runs before every template, so each sees the cycle's start.
instr $SPINOUT_HOST_TIME_INSTR
  kseen init -1
  kcount chnget $SPINOUT_HOST_POSITION_CHANNEL
  if kcount != kseen then
    kseen = kcount
  else
    kspeed chnget $SPINOUT_HOST_SPEED
    if kspeed != 0 then
      kbpm chnget $SPINOUT_HOST_BPM
      kstep = kspeed * kbpm / 60 * ksmps / sr
      kbeat chnget $SPINOUT_HOST_BEAT
      kbarbeat chnget $SPINOUT_HOST_BARBEAT
      kbar chnget $SPINOUT_HOST_BAR
      kperbar chnget $SPINOUT_HOST_BEATSPERBAR
      ksecs chnget $SPINOUT_HOST_SECONDS
      kbarbeat += kstep
      if kperbar > 0 then
        kwrap = floor(kbarbeat / kperbar)
        kbarbeat -= kwrap * kperbar
        kbar += kwrap
      endif
      chnset kbeat + kstep, $SPINOUT_HOST_BEAT
      chnset kbarbeat, $SPINOUT_HOST_BARBEAT
      chnset kbar, $SPINOUT_HOST_BAR
      chnset ksecs + kspeed * ksmps / sr, $SPINOUT_HOST_SECONDS
    endif
  endif
endin

; Audio buses hold one cycle: cleared after the last priority.
instr $SPINOUT_BUS_CLEAR_INSTR
  kn chnget $SPINOUT_AUDIO_BUS_COUNT_CHANNEL
  a__zero init 0
  ki = 0
  while ki < kn do
    gaSpinoutBus[ki] = a__zero
    ki += 1
  od
endin

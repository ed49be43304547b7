// The policy check's classification of every opcode of Csound 6.18 (the built-ins and the
// plugin libraries Debian's csound package ships), as data. An opcode of the running
// Csound that is in none of these lists is refused, and a unit test lists such opcodes,
// so a Csound upgrade cannot silently widen what sessions may do.
#include "spinout/engine.hpp"
#include "spinout/policy.hpp"

#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace spinout {

namespace {

struct Group {
    OpcodeClass kind;
    Permission permission; // what the group needs when the check cannot clear a call
    const char* names;
};

// clang-format off
constexpr Group kGroups[] = {
    // Allocate by an init-time argument (delay lines, arrays): counted against the budget.
    {OpcodeClass::allocates, Permission::memory, R"(
alpass comb combinv delay delayr flanger genarray genarray_i init valpass
vcomb vdelay vdelay3 vdelayx vdelayxq vdelayxs vdelayxw vdelayxwq vdelayxws zakinit)"},
    // Call the opcode a string argument names: that opcode's rule applies.
    {OpcodeClass::callsByName, Permission::exec, R"(
maparray maparray_i tabmap tabmap_i)"},
    // Compile orchestra (compilestr, evalstr) or score (readscore, scoreline) code at run
    // time: a string literal is checked like the session's own code.
    {OpcodeClass::compiles, Permission::exec, R"(
compilestr evalstr readscore scoreline scoreline_i)"},
    // Run a GEN routine: size (3rd argument) and GEN (4th) checked, file GENs confined.
    {OpcodeClass::makesTable, Permission::read, R"(
ftgen ftgenonce ftgentmp)"},
    // Read the file an S argument names (every S argument of the opcode in Csound's list;
    // a number there names a file too: "soundin.N").
    {OpcodeClass::readsFile, Permission::read, R"(
adsyn ATSadd ATSaddnz ATSbufread ATScross ATSinfo ATSread ATSreadnz ATSsinnoi convle
convolve directory diskgrain diskin diskin2 filebit filelen filenchnls filepeak filescal
filesr filevalid fin fini fink ftload ftloadk hrtfearly hrtfer hrtfmove
hrtfmove2 hrtfreverb hrtfstat lpread mp3bitrate mp3in mp3len mp3nchnls mp3scal mp3sr
pconvolve pvadd pvbufread pvcross pvinterp pvoc pvread pvsdiskin pvsfread readf readfi readk
readk2 readk3 readk4 readks sfload sndload soundin vpvoc)"},
    // Run commands, end the host process, or start a Tcl/Tk process (the control library).
    // Free or move a table that running code may still read (Csound does not check: a
    // freed table of spinout's crashed the host), or make tables at numbers the check
    // cannot see (ftsamplebank: one per file from a number on).
    {OpcodeClass::restricted, Permission::exec, R"(
button checkbox compilecsd compileorc control exitnow flashtxt ftfree ftresize ftresizei
ftsamplebank setctrl system system_i)"},
    // Index Csound 6.18's arrays with numbers it does not check: a soundfont's instrument
    // or preset, a stored controller preset (crashes and writes out of bounds, found by
    // attack).
    {OpcodeClass::restricted, Permission::exec, R"(
ctrlpreset ctrlsave ctrlselect sfinstr sfinstr3 sfinstr3m sfinstrm sflooper)"},
    // Load and run DSSI/LADSPA plugins: native code.
    {OpcodeClass::restricted, Permission::native, R"(
dssiactivate dssiaudio dssictls dssiinit dssilist)"},
    // OSC, sockets, remote instruments.
    {OpcodeClass::restricted, Permission::net, R"(
insglobal insremot midglobal midremot OSCbundle OSCcount OSCinit OSCinitM OSClisten OSCraw
OSCsend OSCsend_lo remoteport sockrecv sockrecvs socksend socksends strecv stsend)"},
    // Read the machine outside the session: /proc, the terminal, input devices, the cwd.
    {OpcodeClass::restricted, Permission::read, R"(
cpumeter joystick pwd sense sensekey xyin)"},
    // Serial ports and Arduino boards: devices opened read-write.
    {OpcodeClass::restricted, Permission::write, R"(
arduinoRead arduinoReadF arduinoStart arduinoStop serialBegin serialEnd serialFlush
serialPrint serialRead serialWrite serialWrite_i)"},
    // Score events: an "f" event runs a GEN routine, checked as ftgen.
    {OpcodeClass::scoreEvent, Permission::read, R"(
event event_i)"},
    // Write (or open for writing) the file an argument names.
    {OpcodeClass::writesFile, Permission::write, R"(
ctrlprint ctrlprintpresets dumpk dumpk2 dumpk3 dumpk4 fiopen fout fouti foutir foutk
fprintks fprints ftaudio ftsave ftsavek part2txt pvsfwrite soundout soundouts)"},
    // Csound 6.18's vector opcodes over tables (Opcodes/gab/vectorial.c) loop on an element
    // count they check only against the table's end: 0 or a negative count writes far past
    // it (vlimit crashed the host, found by attack). The check cannot bound a count known
    // at run time, so they are code it cannot vouch for.
    {OpcodeClass::restricted, Permission::exec, R"(
vadd vadd_i vaddv vaddv_i vcella vcopy vcopy_i vdelayk vdivv vdivv_i vecdelay vexp
vexp_i vexpseg vexpv vexpv_i vlimit vlinseg vmap vmirror vmult vmult_i vmultv vmultv_i
vport vpow vpow_i vpowv vpowv_i vrandh vrandi vsubv vsubv_i vtaba vtabi vtabk
vtablea vtablei vtablek vtablewa vtablewi vtablewk vtabwa vtabwi vtabwk vwrap)"},

    // Vetted: signal processing, synthesis, tables, arrays, strings, channels, MIDI,
    // instrument control, printing to Csound's messages. No file, process, device or
    // network access and no run-time compilation.
    {OpcodeClass::vetted, Permission::exec, R"(
a abs active adsr adsynt adsynt2 aftouch allpole alwayson ampdb ampdbfs ampmidi ampmidicurve
ampmidid apoleparams areson aresonk array atone atonek atonex ATSinterpread ATSpartialtap
autocorr babo balance balance2 bamboo barmodel bbcutm bbcuts betarand bexprnd bformdec
bformdec1 bformdec2 bformenc bformenc1 binit biquad biquada birnd bob bpf bpfcos bqrez butbp
butbr buthp butlp butterbp butterbr butterhp butterlp buzz c2r cabasa cauchy cauchyi cbrt
ceil cell cent centroid ceps cepsinv cggoto chanctrl changed changed2 chani chano
chebyshevpoly chn_a chn_k chn_S chnclear chnexport chnget chngeta chngeti chngetk chngetks
chngets chnmix chnparams chnset chnseta chnseti chnsetk chnsetks chnsets cigoto cingoto
ckgoto clear clfilt clip clockoff clockon cmp cmplxprod cngoto cnkgoto cntCreate cntCycles
cntDelete cntDelete_i cntRead cntReset cntState compress compress2 connect copy2ftab
copy2ttab copya2ftab copyf2array cos cosh cosinv cosseg cossegb cossegr count count_i
cps2pch cpsmidi cpsmidib cpsmidinn cpsoct cpspch cpstmid cpstun cpstuni cpsxpch cpuprc
cross2 crossfm crossfmi crossfmpm crossfmpmi crosspm crosspmi crunch ctlchn ctrl14 ctrl21
ctrl7 ctrlinit cuserrnd dam date dates db dbamp dbfsamp dcblock dcblock2 dconv dct dctinv
deinterleave delay1 delayk delayw deltap deltap3 deltapi deltapn deltapx deltapxw denorm
diff diode_ladder dispfft display distort distort1 divz doppler dot downsamp dripwater
duserrnd dust dust2 elapsedcycles elapsedtime endin endop envlpx envlpxr ephasor eqfil
eventcycles eventtime exciter exp expcurve expon exprand exprandi expseg expsega expsegb
expsegba expsegr fareylen fareyleni fft fftinv ficlose fillarray filter2 flooper flooper2
floor fmanal fmax fmb3 fmbell fmin fmmetal fmod fmpercfl fmrhode fmvoice fmwurlie fof fof2
fofilter fog fold follow follow2 foscil foscili frac fractalnoise framebuffer freeverb
ftchnls ftconv ftcps ftexists ftlen ftlptim ftmorf ftom ftprint ftset ftslice ftslicei ftsr
gain gainslider gauss gaussi gausstrig gbuzz gendy gendyc gendyx getcfg getcol getftargs
getrow getseed gogobel goto grain grain2 grain3 granule gtadsr gtf guiro harmon harmon2
harmon3 harmon4 hilbert hilbert2 hsboscil hvs1 hvs2 hvs3 hypot i igoto ihold in in32 inch
inh initc14 initc21 initc7 inleta inletf inletk inletkid inletv ino inq inrg ins instr int
integ interleave interp invalue inx inz jitter jitter2 jspline k K35_hpf K35_lpf kgoto
ktableseg lag lagud lastcycle lenarray lentab lfo lfsr limit limit1 lincos line linen linenr
lineto linlin linrand linseg linsegb linsegr liveconv locsend locsig log log10 log2 logbtwo
logcurve loop_ge loop_gt loop_le loop_lt loopseg loopsegp looptseg loopxseg lorenz loscil
loscil3 loscil3phs loscilphs loscilx lowpass2 lowres lowresx lpcanal lpcfilter lpf18 lpform
lpfreson lphasor lpinterp lposcil lposcil3 lposcila lposcilsa lposcilsa2 lpreson lpshold
lpsholdp lpslot lufs mac maca madsr mags mandel mandol marimba massign max max_k maxabs
maxabsaccum maxaccum maxalloc maxarray maxtab mclock mdelay median mediank metro metro2
metrobpm mfb midiarp midic14 midic21 midic7 midichannelaftertouch midichn midicontrolchange
midictrl mididefault midifilestatus midiin midinoteoff midinoteoncps midinoteonkey
midinoteonoct midinoteonpch midion midion2 midiout midiout_i midipgm midipitchbend
midipolyaftertouch midiprogramchange miditempo min minabs minabsaccum minaccum minarray
mincer mintab mirror MixerClear MixerGetLevel MixerReceive MixerSend MixerSetLevel
MixerSetLevel_i mode modmatrix monitor moog moogladder moogladder2 moogvcf moogvcf2 moscil
mpulse mrtmsg ms2st mtof mton multitap mute mvchpf mvclpf1 mvclpf2 mvclpf3 mvclpf4 mvmfilter
mxadsr nchnls_hw nestedap nlalp nlfilt nlfilt2 noise noteoff noteon noteondur noteondur2
notnum nreverb nrpn nsamp nstance nstrnum nstrstr ntof ntom ntrpol nxtpow2 octave octcps
octmidi octmidib octmidinn octpch olabuffer opcode oscbnk oscil oscil1 oscil1i oscil3 oscili
oscilikt osciliktp oscilikts osciln oscils oscilx out out32 outall outc outch outh outiat
outic outic14 outipat outipb outipc outkat outkc outkc14 outkpat outkpb outkpc outleta
outletf outletk outletkid outletv outo outq outq1 outq2 outq3 outq4 outrg outs outs1 outs2
outvalue outx outz p pan pan2 pareq partials partikkel partikkelget partikkelset
partikkelsync passign paulstretch pcauchy pchbend pchmidi pchmidib pchmidinn pchoct pchtom
pcount pdclip pdhalf pdhalfy peak pgmassign pgmchn phaser1 phaser2 phasor phasorbnk phs
pindex pinker pinkish pitch pitchac pitchamdf planet platerev plltrack pluck poisson
pol2rect polyaft polynomial pop pop_f port portk poscil poscil3 pow powershape powoftwo pows
prealloc prepiano print print_type printarray printf printf_i printk printk2 printks
printks2 println prints printsk product pset ptable ptable3 ptablei ptableiw ptablew ptrack
push push_f puts pvs2array pvs2tab pvsadsyn pvsanal pvsarp pvsbandp pvsbandr pvsbandwidth
pvsbin pvsblur pvsbuffer pvsbufread pvsbufread2 pvscale pvscent pvsceps pvscfs pvscross
pvsdemix pvsdisp pvsenvftw pvsfilter pvsfreeze pvsfromarray pvsftr pvsftw pvsgain pvsgendy
pvshift pvsifd pvsin pvsinfo pvsinit pvslock pvslpc pvsmaska pvsmix pvsmooth pvsmorph pvsosc
pvsout pvspitch pvstanal pvstencil pvstrace pvsvoc pvswarp pvsynth qinf qnan r2c rand randc
randh randi random randomh randomi rbjeq readclock readscratch rect2pol reinit release
remove repluck reshapearray reson resonbnk resonk resonr resonx resonxk resony resonz resyn
return reverb reverb2 reverbsc rewindscore rezzy rfft rifft rigoto rireturn rms rnd rnd31
rndseed round rspline rtclock S s16b14 s32b14 samphold sandpaper sc_lag sc_lagud sc_phasor
sc_trig scale scale2 scalearray scalet scanhammer scantable schedkwhen schedkwhennamed
schedule schedulek schedwhen seed sekere select semitone seqtime seqtime2 sequ sequstate
setcol setksmps setrow setscorepos sfilist sfpassign sfplay sfplay3 sfplay3m sfplaym sfplist
sfpreset shaker shiftin shiftout signum sin sinh sininv sinsyn skf sleighbells slicearray
slicearray_i slider16 slider16f slider16table slider16tablef slider32 slider32f
slider32table slider32tablef slider64 slider64f slider64table slider64tablef slider8
slider8f slider8table slider8tablef sliderKawai sndloop sndwarp sndwarpst sorta sortd space
spat3d spat3di spat3dt spdist specaddm specdiff specdisp specfilt spechist specptrk specscal
specsum spectrum spf splitrig sprintf sprintfk spsend sqrt squinewave st2ms stack statevar
sterrain stix strcat strcatk strchar strchark strcmp strcmpk strcpy strcpyk streson strget
strindex strindexk string2array strlen strlenk strlower strlowerk strrindex strrindexk
strset strstrip strsub strsubk strtod strtodk strtol strtolk strupper strupperk subinstr
subinstrinit sum sumarray sumtab svfilter svn syncgrain syncloop syncphasor systime tab
tab2array tab2pvs tab_i tabgen tabifd table table3 table3kt tablecopy tablefilter
tablefilteri tablegpw tablei tableicopy tableigpw tableikt tableimix tableiw tablekt
tablemix tableng tablera tableseg tableshuffle tableshufflei tablew tablewa tablewkt
tablexkt tablexseg tabmorph tabmorpha tabmorphak tabmorphi tabplay tabrec tabslice tabsum
tabw tabw_i tambourine tan tanh taninv taninv2 tb0 tb0_init tb1 tb10 tb10_init tb11
tb11_init tb12 tb12_init tb13 tb13_init tb14 tb14_init tb15 tb15_init tb1_init tb2 tb2_init
tb3 tb3_init tb4 tb4_init tb5 tb5_init tb6 tb6_init tb7 tb7_init tb8 tb8_init tb9 tb9_init
tbvcf tempest tempo temposcal tempoval tigoto timedseq timeinstk timeinsts timek times
timout tival tlineto tone tonek tonex tradsyn trandom transeg transegb transegr trcross
trfilter trhighest trigExpseg trigexpseg trigger trighold trigLinseg triglinseg trigphasor
trigseq trim trim_i trirand trlowest trmix trscale trshift trsplit turnoff turnoff2
turnoff2_i turnoff3 turnon tvconv unirand unwrap upsamp urandom urd vactrol vaget vaset vbap
vbap16 vbap4 vbap4move vbap8 vbap8move vbapg vbapgmove vbaplsinit vbapmove vbapz vbapzmove
vclpf vco vco2 vco2ft vco2ift vco2init vdel_k veloc vibes vibr vibrato vincr vlowres voice
vosim vphaseseg vps vtable1k waveset weibull wgbow wgbowedbar wgbrass wgclar wgflute wgpluck
wgpluck2 wguide1 wguide2 window wrap writescratch wterrain wterrain2 xadsr xin xout xtratim
xyscale zacl zamod zar zarg zaw zawm zdf_1pole zdf_1pole_mode zdf_2pole zdf_2pole_mode
zdf_ladder zfilter2 zir ziw ziwm zkcl zkmod zkr zkw zkwm)"},
};
// clang-format on

// Operators: Csound names them with symbols, and its opcode list leaves them out.
constexpr const char* kOperators =
    "! != ##add ##addin ##and ##array_get ##array_init ##array_set ##div ##mod ##mul ##not "
    "##or ##pow ##rem ##shl ##shr ##sub ##subin ##xor ##xin64 ##xin256 #= $label && :cond < "
    "<= = == > >= ||";

struct Tables {
    std::unordered_map<std::string, OpcodeRule> rules;
};

const Tables& tables() {
    static const Tables t = [] {
        Tables t;
        auto add = [&](const char* names, OpcodeRule rule) {
            std::string word;
            for (const char* c = names;; ++c) {
                if (*c == '\0' || *c == ' ' || *c == '\n') {
                    if (!word.empty()) t.rules.emplace(word, rule);
                    word.clear();
                    if (*c == '\0') break;
                } else {
                    word += *c;
                }
            }
        };
        for (const auto& g : kGroups)
            add(g.names, {g.kind, g.permission});
        add(kOperators, {OpcodeClass::vetted, Permission::exec});
        return t;
    }();
    return t;
}

} // namespace

OpcodeRule opcodeRule(std::string_view opcode) {
    const auto& rules = tables().rules;
    auto it = rules.find(std::string(opcode));
    if (it == rules.end()) return {};
    return it->second;
}

std::vector<std::string> unclassifiedOpcodes() {
    std::set<std::string> names;
    for (const auto& e : csoundOpcodes())
        if (opcodeRule(e.name).kind == OpcodeClass::unknown) names.insert(e.name);
    return {names.begin(), names.end()};
}

} // namespace spinout

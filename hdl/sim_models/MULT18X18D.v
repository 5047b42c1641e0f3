// Behavioural model of the Lattice ECP5 MULT18X18D multiplier, for simulating the Verilog
// that codesign generates for ECP5 (hdl/dataflow/dsp.py) with Verilator or Icarus. Written
// from the ECP5 sysDSP usage guide (FPGA-TN-02205): P = A x B, each operand two's
// complement when its SIGNED input is high; the input registers (REG_INPUTA/B_CLK) and
// the output register (REG_OUTPUT_CLK) clock on CLK0 with CE0, or are bypassed ("NONE").
// Only what codesign instantiates is modelled: no pipeline register, cascades, shift
// chains, C input or resets, and only CLK0/CE0: the ports codesign connects.
`default_nettype none
module MULT18X18D #(
    parameter REG_INPUTA_CLK = "NONE",
    parameter REG_INPUTB_CLK = "NONE",
    parameter REG_OUTPUT_CLK = "NONE"
) (
    input wire A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17, B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
    input wire SIGNEDA, SIGNEDB, CLK0, CE0,
    output wire P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0
);
    wire [17:0] a = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    reg [17:0] a_r = 18'd0, b_r = 18'd0;
    reg sa_r = 1'b0, sb_r = 1'b0;
    always @(posedge CLK0) if (CE0) begin
        a_r <= a; b_r <= b; sa_r <= SIGNEDA; sb_r <= SIGNEDB;
    end
    wire [17:0] a_m = REG_INPUTA_CLK == "NONE" ? a : a_r;
    wire [17:0] b_m = REG_INPUTB_CLK == "NONE" ? b : b_r;
    wire sa = REG_INPUTA_CLK == "NONE" ? SIGNEDA : sa_r;
    wire sb = REG_INPUTB_CLK == "NONE" ? SIGNEDB : sb_r;
    wire signed [36:0] a_x = {{19{sa & a_m[17]}}, a_m};
    wire signed [36:0] b_x = {{19{sb & b_m[17]}}, b_m};
    wire signed [73:0] full = a_x * b_x;
    wire [35:0] p = full[35:0];
    reg [35:0] p_r = 36'd0;
    always @(posedge CLK0) if (CE0) p_r <= p;
    wire [35:0] p_o = REG_OUTPUT_CLK == "NONE" ? p : p_r;
    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p_o;
endmodule
`default_nettype wire
